package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	pb "github.com/turbot/steampipe-plugin-sdk/v5/grpc/proto"
)

// columnValue converts one Column the way the Steampipe FDW does before
// handing it to Postgres, and names the oneof member that carried it.
//
//	null_value / unset     -> nil (SQL NULL)
//	int / double           -> number (NaN and infinities become strings)
//	string/ip/cidr/ltree   -> string
//	bool                   -> bool
//	json_value             -> the decoded JSON (decoded into interface{}, like
//	                          the FDW, so numbers pass through float64), or
//	                          "INVALID_JSON:<raw>" when the bytes are not JSON
//	timestamp_value        -> RFC 3339 string with nanoseconds, UTC
func columnValue(c *pb.Column) (kind string, val interface{}) {
	if c == nil {
		return "unset", nil
	}
	switch v := c.GetValue().(type) {
	case nil:
		return "unset", nil
	case *pb.Column_NullValue:
		return "null_value", nil
	case *pb.Column_DoubleValue:
		f := v.DoubleValue
		switch {
		case math.IsNaN(f):
			return "double_value", "NaN"
		case math.IsInf(f, 1):
			return "double_value", "+Inf"
		case math.IsInf(f, -1):
			return "double_value", "-Inf"
		}
		return "double_value", f
	case *pb.Column_IntValue:
		return "int_value", v.IntValue
	case *pb.Column_StringValue:
		return "string_value", v.StringValue
	case *pb.Column_BoolValue:
		return "bool_value", v.BoolValue
	case *pb.Column_JsonValue:
		var decoded interface{}
		if len(v.JsonValue) == 0 || json.Unmarshal(v.JsonValue, &decoded) != nil {
			return "json_value", "INVALID_JSON:" + string(v.JsonValue)
		}
		return "json_value", decoded
	case *pb.Column_TimestampValue:
		ts := v.TimestampValue
		if err := ts.CheckValid(); err != nil {
			return "timestamp_value", fmt.Sprintf("INVALID_TIMESTAMP:%d,%d", ts.GetSeconds(), ts.GetNanos())
		}
		return "timestamp_value", ts.AsTime().UTC().Format(time.RFC3339Nano)
	case *pb.Column_IpAddrValue:
		return "ip_addr_value", v.IpAddrValue
	case *pb.Column_CidrRangeValue:
		return "cidr_range_value", v.CidrRangeValue
	case *pb.Column_LtreeValue:
		return "ltree_value", v.LtreeValue
	default:
		return fmt.Sprintf("unknown(%T)", v), nil
	}
}

// convertedRow is an ExecuteResponse as the tests see it.
type convertedRow struct {
	Connection string                 `json:"connection"`
	Kinds      map[string]string      `json:"kinds"`
	Values     map[string]interface{} `json:"values"`
}

// badRowReason says why the FDW would take this response as the end of the
// scan (a missing row, or a row without columns), or "" for a good row.
func badRowReason(resp *pb.ExecuteResponse) string {
	if resp.GetRow() == nil {
		return "response has no row (the FDW treats this as end of data)"
	}
	if len(resp.GetRow().GetColumns()) == 0 {
		return "row has an empty columns map (the FDW treats this as end of scan)"
	}
	return ""
}

// convertResponse converts a good row (see badRowReason).
func convertResponse(resp *pb.ExecuteResponse) *convertedRow {
	cols := resp.GetRow().GetColumns()
	r := &convertedRow{
		Connection: resp.GetConnection(),
		Kinds:      make(map[string]string, len(cols)),
		Values:     make(map[string]interface{}, len(cols)),
	}
	for name, col := range cols {
		kind, val := columnValue(col)
		r.Kinds[name] = kind
		r.Values[name] = val
	}
	return r
}

// canonical is the row's JSON encoding, {"connection","kinds","values"},
// with every object's keys sorted (encoding/json sorts map keys).
func (r *convertedRow) canonical() []byte {
	return marshalValue(r)
}

// digest is the sha256 of the row's canonical encoding.
func (r *convertedRow) digest() [sha256.Size]byte {
	return sha256.Sum256(r.canonical())
}

// rowDigest combines per-row digests independently of row order: the hex
// sha256 of the concatenated row digests, sorted. Two scans have the same
// rowDigest exactly when they returned the same multiset of rows. (Hashing
// each row first keeps memory flat for large parallel scans.)
func rowDigest(rows [][sha256.Size]byte) string {
	sorted := append([][sha256.Size]byte(nil), rows...)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i][:], sorted[j][:]) < 0 })
	h := sha256.New()
	for _, d := range sorted {
		h.Write(d[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}
