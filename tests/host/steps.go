package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	sdkgrpc "github.com/turbot/steampipe-plugin-sdk/v5/grpc"
	pb "github.com/turbot/steampipe-plugin-sdk/v5/grpc/proto"
	"github.com/turbot/steampipe-plugin-sdk/v5/grpc/shared"
	"google.golang.org/protobuf/proto"
)

func (h *host) emitInit(rpc string, resp proto.Message, err error) {
	e := newEvent("init").set("rpc", rpc)
	if err != nil {
		h.em.emit(e.setErr(err).setSDKErr(err, rpc))
		return
	}
	h.em.emit(e.set("response", pjson(resp)))
}

// client returns client id, or an error event's worth of explanation when
// that client failed to reattach.
func (h *host) client(id int) (*hostClient, error) {
	if id < 0 || id >= len(h.clients) || h.clients[id] == nil {
		return nil, hostErrorf("client %d is not available (its reattach failed)", id)
	}
	return h.clients[id], nil
}

func (h *host) runStep(st *step) {
	switch st.Op {
	case "get_schema":
		h.stepGetSchema(st)
	case "rpc":
		h.stepRPC(st)
	case "message_stream":
		h.stepMessageStream(st)
	case "reattach":
		h.stepReattach(st)
	case "execute":
		h.stepExecute(st)
	case "parallel":
		h.stepParallel(st)
	case "sleep":
		time.Sleep(time.Duration(st.Ms) * time.Millisecond)
		h.em.emit(newStepEvent("slept", st.index).set("ms", st.Ms))
	case "http":
		h.stepHTTP(st)
	case "kill":
		h.stepKill(st)
	}
}

// stepHTTP makes one request to a test peer on loopback (e.g. to reset or
// read the emulator's request recording between two scans).
func (h *host) stepHTTP(st *step) {
	e := newStepEvent("http", st.index).set("method", st.Method).set("url", st.URL)
	client := &http.Client{Timeout: 30 * time.Second}
	req, err := http.NewRequest(st.Method, st.URL, nil)
	if err != nil {
		h.em.emit(e.setErr(hostErrorf("%v", err)))
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		h.em.emit(e.setErr(hostErrorf("%v", err)))
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.em.emit(e.setErr(hostErrorf("%v", err)))
		return
	}
	h.em.emit(e.set("status", resp.StatusCode).set("body", string(body)))
}

func (h *host) stepGetSchema(st *step) {
	conn := ""
	if st.Connection != nil {
		conn = *st.Connection
	} else if len(h.sc.connections) > 0 {
		conn = h.sc.connections[0].GetConnection()
	}
	e := newStepEvent("schema", st.index).set("client", st.Client).set("connection", conn)
	c, err := h.client(st.Client)
	if err != nil {
		h.em.emit(e.setErr(err))
		return
	}
	resp, err := c.stub.GetSchema(&pb.GetSchemaRequest{Connection: conn})
	if err != nil {
		h.em.emit(e.setErr(err))
		return
	}
	h.em.emit(e.set("response", pjson(resp)))
}

// callRPC makes one of the unary calls the "rpc" op allows, through the
// SDK's client stub.
func callRPC(stub shared.WrapperPluginClient, method string, req proto.Message) (proto.Message, error) {
	var resp proto.Message
	var err error
	switch method {
	case "GetSupportedOperations":
		resp, err = stub.GetSupportedOperations(req.(*pb.GetSupportedOperationsRequest))
	case "SetAllConnectionConfigs":
		resp, err = stub.SetAllConnectionConfigs(req.(*pb.SetAllConnectionConfigsRequest))
	case "UpdateConnectionConfigs":
		resp, err = stub.UpdateConnectionConfigs(req.(*pb.UpdateConnectionConfigsRequest))
	case "SetCacheOptions":
		resp, err = stub.SetCacheOptions(req.(*pb.SetCacheOptionsRequest))
	case "SetConnectionCacheOptions":
		resp, err = stub.SetConnectionCacheOptions(req.(*pb.SetConnectionCacheOptionsRequest))
	case "SetRateLimiters":
		resp, err = stub.SetRateLimiters(req.(*pb.SetRateLimitersRequest))
	case "GetRateLimiters":
		resp, err = stub.GetRateLimiters(req.(*pb.GetRateLimitersRequest))
	case "SetConnectionConfig":
		resp, err = stub.SetConnectionConfig(req.(*pb.SetConnectionConfigRequest))
	case "GetSchema":
		resp, err = stub.GetSchema(req.(*pb.GetSchemaRequest))
	default:
		return nil, hostErrorf("unknown method %q", method)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (h *host) stepRPC(st *step) {
	e := newStepEvent("rpc", st.index).set("method", st.Method).set("client", st.Client)
	c, err := h.client(st.Client)
	if err != nil {
		h.em.emit(e.setErr(err))
		return
	}
	resp, err := callRPC(c.stub, st.Method, st.req)
	if err != nil {
		h.em.emit(e.setErr(err).setSDKErr(err, st.Method))
		return
	}
	h.em.emit(e.set("response", pjson(resp)))
}

func (h *host) stepMessageStream(st *step) {
	e := newStepEvent("message_stream", st.index).set("client", st.Client)
	messages := []json.RawMessage{}
	c, err := h.client(st.Client)
	if err != nil {
		h.em.emit(e.set("messages", messages).set("end", "error").setErr(err))
		return
	}
	// The SDK's stub opens the stream on the client's own context, so the
	// timeout is applied to the reading, as the plugin manager's reader
	// goroutine would see it.
	end := "eof"
	stream, err := c.stub.EstablishMessageStream()
	if err == nil {
		type received struct {
			msg *pb.PluginMessage
			err error
		}
		ch := make(chan received, 1)
		go func() {
			for {
				msg, err := stream.Recv()
				ch <- received{msg, err}
				if err != nil {
					return
				}
			}
		}()
		deadline := time.After(time.Duration(*st.TimeoutMs) * time.Millisecond)
	read:
		for {
			select {
			case r := <-ch:
				if r.err != nil {
					err = r.err
					break read
				}
				messages = append(messages, pjson(r.msg))
			case <-deadline:
				end = "timeout"
				break read
			}
		}
	}
	switch {
	case end == "timeout":
	case err == io.EOF:
		err = nil
	default:
		end = "error"
	}
	h.em.emit(e.set("messages", messages).set("end", end).setErr(err))
}

// stepReattach connects new clients to the running plugin the way each FDW
// backend does: a go-plugin client with Reattach, no TLS.
func (h *host) stepReattach(st *step) {
	e := newStepEvent("reattached", st.index)
	ok := []int{}
	var failed []map[string]interface{}
	t0 := time.Now()
	for i := 0; i < *st.Count; i++ {
		id := len(h.clients)
		c, err := h.reattachClient(id)
		h.clients = append(h.clients, c) // nil on failure keeps numbering stable
		if err != nil {
			failed = append(failed, map[string]interface{}{"client": id, "error": err.Error()})
			continue
		}
		ok = append(ok, id)
	}
	e.set("clients", ok).set("ms", time.Since(t0).Milliseconds())
	if len(failed) > 0 {
		e.set("failed", failed)
	}
	h.em.emit(e)
}

func (h *host) reattachClient(id int) (*hostClient, error) {
	if h.network != "unix" && h.network != "tcp" {
		return nil, fmt.Errorf("unknown network %q", h.network)
	}
	// What the FDW does with the plugin manager's reply: a go-plugin
	// ReattachConfig (pluginshared.ReattachConfig.Convert), then the SDK's
	// NewPluginClientFromReattach.
	reattach := &plugin.ReattachConfig{
		Protocol:        plugin.ProtocolGRPC,
		ProtocolVersion: 0,
		Addr:            simpleAddr{h.network, h.address},
		Pid:             h.pid,
	}
	c, err := sdkgrpc.NewPluginClientFromReattach(reattach, h.sc.pluginName)
	if err != nil {
		return nil, err
	}
	return &hostClient{id: id, sdk: c, stub: c.Stub}, nil
}

// scanResult is what one Execute call produced.
type scanResult struct {
	rows        int
	badRows     int
	end         string // eof, cancelled or error
	err         error
	ms          int64
	connections map[string]int
	digests     [][sha256.Size]byte
	// metadata is the last ExecuteResponse.metadata per connection, which
	// is what the FDW keeps for Steampipe's scan metadata (.timing);
	// noMetadata counts rows that came without any.
	metadata   map[string]*pb.QueryMetadata
	noMetadata int
	// endAt is when reading ended; cancelAt when the call was cancelled
	// (zero unless end is "cancelled").
	endAt    time.Time
	cancelAt time.Time
}

// unixSeconds is t as fractional unix seconds (the proxy logs the same clock).
func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

// scanOptions controls one Execute call.
type scanOptions struct {
	cancelAfter *int
	readDelay   time.Duration
	keepDigest  bool
	onRow       func(*convertedRow, *pb.QueryMetadata)
	onBadRow    func(reason string)
}

// scan runs one Execute call and reads its stream to the end, to an error, or
// until opts.cancelAfter rows have arrived, when it cancels the call the way
// the FDW does when Postgres stops early.
func scan(c *sdkgrpc.PluginClient, req *pb.ExecuteRequest, opts scanOptions) *scanResult {
	res := &scanResult{end: "eof", connections: map[string]int{}, metadata: map[string]*pb.QueryMetadata{}}
	t0 := time.Now()
	defer func() {
		res.endAt = time.Now()
		res.ms = res.endAt.Sub(t0).Milliseconds()
	}()

	// The FDW's call (hub/scan_iterator_base.go): PluginClient.Execute
	// returns the stream and the cancel function it uses when Postgres
	// stops reading early.
	stream, _, cancel, err := c.Execute(req)
	if err != nil {
		res.end, res.err = "error", err
		return res
	}
	defer cancel()
	if opts.cancelAfter != nil && *opts.cancelAfter == 0 {
		res.cancelAt = time.Now()
		cancel()
		res.end = "cancelled"
		return res
	}
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return res
		}
		if err != nil {
			res.end, res.err = "error", err
			return res
		}
		if reason := badRowReason(resp); reason != "" {
			res.badRows++
			if opts.onBadRow != nil {
				opts.onBadRow(reason)
			}
			continue
		}
		res.rows++
		res.connections[resp.GetConnection()]++
		// As the FDW does (scanIteratorBase.readPluginResult): each row's
		// metadata replaces the connection's previous one.
		if m := resp.GetMetadata(); m != nil {
			res.metadata[resp.GetConnection()] = m
		} else {
			res.noMetadata++
		}
		if opts.keepDigest || opts.onRow != nil {
			// Converting is the expensive part; quiet scans skip it.
			row := convertResponse(resp)
			if opts.keepDigest {
				res.digests = append(res.digests, row.digest())
			}
			if opts.onRow != nil {
				opts.onRow(row, resp.GetMetadata())
			}
		}
		if opts.cancelAfter != nil && res.rows >= *opts.cancelAfter {
			res.cancelAt = time.Now()
			cancel()
			res.end = "cancelled"
			return res
		}
		if opts.readDelay > 0 {
			time.Sleep(opts.readDelay)
		}
	}
}

func (h *host) stepExecute(st *step) {
	end := newStepEvent("execute_end", st.index).set("client", st.Client)
	c, err := h.client(st.Client)
	if err != nil {
		h.em.emit(end.set("rows", 0).set("end", "error").setErr(err))
		return
	}
	opts := scanOptions{
		cancelAfter: st.CancelAfterRows,
		readDelay:   time.Duration(st.ReadDelayMs) * time.Millisecond,
		onBadRow: func(reason string) {
			h.em.emit(newStepEvent("bad_row", st.index).set("reason", reason))
		},
	}
	if !st.Quiet {
		opts.onRow = func(r *convertedRow, m *pb.QueryMetadata) {
			ev := newStepEvent("row", st.index).
				set("connection", r.Connection).
				set("values", r.Values).
				set("kinds", r.Kinds)
			if m != nil {
				ev.set("metadata", metadataJSON(m))
			}
			h.em.emit(ev)
		}
	}
	res := scan(c.sdk, st.req.(*pb.ExecuteRequest), opts)
	if st.HoldMs > 0 {
		time.Sleep(time.Duration(st.HoldMs) * time.Millisecond)
	}
	end.set("rows", res.rows).
		set("bad_rows", res.badRows).
		set("end", res.end).
		setErr(res.err).
		set("ms", res.ms).
		set("connections", res.connections).
		set("metadata", metadataByConnection(res.metadata)).
		set("rows_without_metadata", res.noMetadata).
		set("t", unixSeconds(res.endAt))
	if !res.cancelAt.IsZero() {
		end.set("cancel_t", unixSeconds(res.cancelAt))
	}
	h.em.emit(end)
}

func (h *host) stepParallel(st *step) {
	t0 := time.Now()
	req := st.req.(*pb.ExecuteRequest)
	results := make([]*scanResult, st.Scans)
	clientOf := make([]int, st.Scans)
	var wg sync.WaitGroup
	for k := 0; k < st.Scans; k++ {
		clientOf[k] = st.Clients[k%len(st.Clients)]
		c, err := h.client(clientOf[k])
		if err != nil {
			results[k] = &scanResult{end: "error", err: err, connections: map[string]int{}, metadata: map[string]*pb.QueryMetadata{}}
			continue
		}
		wg.Add(1)
		go func(k int, sdk *sdkgrpc.PluginClient) {
			defer wg.Done()
			results[k] = scan(sdk, req, scanOptions{
				cancelAfter: st.CancelAfterRows,
				readDelay:   time.Duration(st.ReadDelayMs) * time.Millisecond,
				keepDigest:  true,
			})
		}(k, c.sdk)
	}
	wg.Wait()
	for k, res := range results {
		h.em.emit(newStepEvent("parallel_scan", st.index).
			set("scan", k).
			set("client", clientOf[k]).
			set("rows", res.rows).
			set("bad_rows", res.badRows).
			set("end", res.end).
			setErr(res.err).
			set("ms", res.ms).
			set("connections", res.connections).
			set("metadata", metadataByConnection(res.metadata)).
			set("rows_without_metadata", res.noMetadata).
			set("row_digest", rowDigest(res.digests)))
	}
	h.em.emit(newStepEvent("parallel_end", st.index).set("ms", time.Since(t0).Milliseconds()))
}

// stepKill kills client 0 the way the plugin manager does (go-plugin Kill:
// GRPCController/Shutdown, wait up to 2 s, then SIGKILL) and reports whether
// the process and its socket are gone afterwards.
func (h *host) stepKill(st *step) {
	atomic.StoreInt32(&h.sink.forced, 0)
	t0 := time.Now()
	h.main.Kill()
	ms := time.Since(t0).Milliseconds()
	h.killMu.Lock()
	h.killed = true
	h.killMu.Unlock()

	processGone := errors.Is(syscall.Kill(h.pid, 0), syscall.ESRCH)
	socketGone := false
	switch h.network {
	case "unix":
		_, err := os.Stat(h.address)
		socketGone = os.IsNotExist(err)
	case "tcp":
		conn, err := net.DialTimeout("tcp", h.address, time.Second)
		if err == nil {
			conn.Close()
		}
		socketGone = err != nil
	}
	h.em.emit(newStepEvent("killed", st.index).
		set("ms", ms).
		set("process_gone", processGone).
		set("socket_gone", socketGone).
		set("forced", atomic.LoadInt32(&h.sink.forced) == 1))
}

// metadataJSON is one QueryMetadata as the tests read it (plain numbers, as
// Steampipe's ScanMetadataRow holds them).
func metadataJSON(m *pb.QueryMetadata) map[string]interface{} {
	return map[string]interface{}{
		"rows_fetched":  m.GetRowsFetched(),
		"hydrate_calls": m.GetHydrateCalls(),
		"cache_hit":     m.GetCacheHit(),
	}
}

// metadataByConnection is the scan metadata per connection, as the FDW ends
// up with it: the last row's of each connection.
func metadataByConnection(ms map[string]*pb.QueryMetadata) map[string]interface{} {
	out := make(map[string]interface{}, len(ms))
	for c, m := range ms {
		out[c] = metadataJSON(m)
	}
	return out
}
