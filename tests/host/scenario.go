package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	pb "github.com/turbot/steampipe-plugin-sdk/v5/grpc/proto"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// scenario is a parsed and validated scenario file. Everything, including
// every protojson request in every step, is parsed before the plugin starts,
// so a mistake in a scenario never leaves a half-run plugin behind.
type scenario struct {
	plugin       string
	pluginName   string
	args         []string
	env          map[string]string
	stderrFile   string
	skipCookie   bool
	autoMTLS     bool
	connections  []*pb.ConnectionConfig
	init         bool
	cacheOptions *pb.SetCacheOptionsRequest
	rateLimiters []*pb.RateLimiterDefinition
	steps        []*step
}

type scenarioJSON struct {
	Plugin       string            `json:"plugin"`
	PluginName   string            `json:"plugin_name"`
	Args         []string          `json:"args"`
	Env          map[string]string `json:"env"`
	StderrFile   string            `json:"stderr_file"`
	SkipCookie   bool              `json:"skip_cookie"`
	AutoMTLS     bool              `json:"auto_mtls"`
	Connections  []json.RawMessage `json:"connections"`
	Init         *bool             `json:"init"`
	CacheOptions json.RawMessage   `json:"cache_options"`
	RateLimiters []json.RawMessage `json:"rate_limiters"`
	Steps        []json.RawMessage `json:"steps"`
}

var scenarioKeys = []string{"plugin", "plugin_name", "args", "env", "stderr_file", "skip_cookie",
	"auto_mtls", "connections", "init", "cache_options", "rate_limiters", "steps"}

// step is one entry of "steps". Which fields apply depends on Op.
type step struct {
	index int

	Op              string          `json:"op"`
	Client          int             `json:"client"`
	Connection      *string         `json:"connection"`
	Method          string          `json:"method"`
	Request         json.RawMessage `json:"request"`
	TimeoutMs       *int            `json:"timeout_ms"`
	Count           *int            `json:"count"`
	CancelAfterRows *int            `json:"cancel_after_rows"`
	HoldMs          int             `json:"hold_ms"`
	Quiet           bool            `json:"quiet"`
	ReadDelayMs     int             `json:"read_delay_ms"`
	Scans           int             `json:"scans"`
	Clients         []int           `json:"clients"`
	Ms              int             `json:"ms"`
	URL             string          `json:"url"`

	// req is the parsed Request (for rpc, execute and parallel).
	req proto.Message
}

// stepKeys lists, per op, the keys a step may carry besides "op".
var stepKeys = map[string][]string{
	"get_schema":     {"client", "connection"},
	"rpc":            {"method", "request", "client"},
	"message_stream": {"client", "timeout_ms"},
	"reattach":       {"count"},
	"execute":        {"client", "request", "cancel_after_rows", "hold_ms", "quiet", "read_delay_ms"},
	"parallel":       {"scans", "clients", "request", "read_delay_ms", "cancel_after_rows"},
	"sleep":          {"ms"},
	"http":           {"method", "url"},
	"kill":           {},
}

// rpcRequests maps the methods the "rpc" op may call to their request type.
var rpcRequests = map[string]func() proto.Message{
	"GetSupportedOperations":    func() proto.Message { return &pb.GetSupportedOperationsRequest{} },
	"SetAllConnectionConfigs":   func() proto.Message { return &pb.SetAllConnectionConfigsRequest{} },
	"UpdateConnectionConfigs":   func() proto.Message { return &pb.UpdateConnectionConfigsRequest{} },
	"SetCacheOptions":           func() proto.Message { return &pb.SetCacheOptionsRequest{} },
	"SetConnectionCacheOptions": func() proto.Message { return &pb.SetConnectionCacheOptionsRequest{} },
	"SetRateLimiters":           func() proto.Message { return &pb.SetRateLimitersRequest{} },
	"GetRateLimiters":           func() proto.Message { return &pb.GetRateLimitersRequest{} },
	"SetConnectionConfig":       func() proto.Message { return &pb.SetConnectionConfigRequest{} },
	"GetSchema":                 func() proto.Message { return &pb.GetSchemaRequest{} },
}

func readScenario(arg string) ([]byte, error) {
	if arg == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(arg)
}

// checkKeys rejects keys outside allowed, so that a typo in a scenario fails
// loudly instead of being silently ignored. Keys starting with "_" are
// comments and always allowed.
func checkKeys(raw json.RawMessage, allowed []string, what string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	if m == nil {
		return fmt.Errorf("%s: must be a JSON object", what)
	}
	ok := map[string]bool{}
	for _, k := range allowed {
		ok[k] = true
	}
	var bad []string
	for k := range m {
		if !ok[k] && !strings.HasPrefix(k, "_") {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%s: unknown key(s) %s (allowed: %s)", what,
			strings.Join(bad, ", "), strings.Join(allowed, ", "))
	}
	return nil
}

func parseProto(raw json.RawMessage, m proto.Message, what string) error {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	if err := protojson.Unmarshal(raw, m); err != nil {
		return fmt.Errorf("%s: invalid %s: %v", what, m.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

func parseScenario(data []byte) (*scenario, error) {
	if err := checkKeys(data, scenarioKeys, "scenario"); err != nil {
		return nil, err
	}
	var sj scenarioJSON
	if err := json.Unmarshal(data, &sj); err != nil {
		return nil, fmt.Errorf("scenario: %v", err)
	}
	if sj.Plugin == "" {
		return nil, fmt.Errorf("scenario: \"plugin\" is required")
	}
	sc := &scenario{
		plugin:     sj.Plugin,
		pluginName: sj.PluginName,
		args:       sj.Args,
		env:        sj.Env,
		stderrFile: sj.StderrFile,
		skipCookie: sj.SkipCookie,
		autoMTLS:   sj.AutoMTLS,
		init:       sj.Init == nil || *sj.Init,
	}
	if sc.pluginName == "" {
		sc.pluginName = defaultPluginName
	}
	for i, raw := range sj.Connections {
		cc := &pb.ConnectionConfig{}
		if err := parseProto(raw, cc, fmt.Sprintf("connections[%d]", i)); err != nil {
			return nil, err
		}
		sc.connections = append(sc.connections, cc)
	}
	sc.cacheOptions = &pb.SetCacheOptionsRequest{Enabled: true, Ttl: 300}
	if len(sj.CacheOptions) > 0 && string(sj.CacheOptions) != "null" {
		sc.cacheOptions = &pb.SetCacheOptionsRequest{}
		if err := parseProto(sj.CacheOptions, sc.cacheOptions, "cache_options"); err != nil {
			return nil, err
		}
	}
	sc.rateLimiters = []*pb.RateLimiterDefinition{}
	for i, raw := range sj.RateLimiters {
		d := &pb.RateLimiterDefinition{}
		if err := parseProto(raw, d, fmt.Sprintf("rate_limiters[%d]", i)); err != nil {
			return nil, err
		}
		sc.rateLimiters = append(sc.rateLimiters, d)
	}

	clients := 1 // client 0 is the one that starts the plugin
	for i, raw := range sj.Steps {
		st, err := parseStep(i, raw, clients)
		if err != nil {
			return nil, err
		}
		if st.Op == "reattach" {
			clients += *st.Count
		}
		sc.steps = append(sc.steps, st)
	}
	return sc, nil
}

func parseStep(i int, raw json.RawMessage, clients int) (*step, error) {
	what := fmt.Sprintf("steps[%d]", i)
	st := &step{index: i}
	if err := json.Unmarshal(raw, st); err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	keys, known := stepKeys[st.Op]
	if !known {
		ops := make([]string, 0, len(stepKeys))
		for op := range stepKeys {
			ops = append(ops, op)
		}
		sort.Strings(ops)
		return nil, fmt.Errorf("%s: unknown op %q (known: %s)", what, st.Op, strings.Join(ops, ", "))
	}
	if err := checkKeys(raw, append([]string{"op"}, keys...), what+" ("+st.Op+")"); err != nil {
		return nil, err
	}
	checkClient := func(c int) error {
		if c < 0 || c >= clients {
			return fmt.Errorf("%s: client %d does not exist at this point (clients 0..%d)", what, c, clients-1)
		}
		return nil
	}
	if err := checkClient(st.Client); err != nil {
		return nil, err
	}
	if st.HoldMs < 0 || st.ReadDelayMs < 0 || st.Ms < 0 {
		return nil, fmt.Errorf("%s: durations must not be negative", what)
	}

	switch st.Op {
	case "rpc":
		mk, ok := rpcRequests[st.Method]
		if !ok {
			names := make([]string, 0, len(rpcRequests))
			for n := range rpcRequests {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("%s: unknown method %q (known: %s)", what, st.Method, strings.Join(names, ", "))
		}
		st.req = mk()
		if err := parseProto(st.Request, st.req, what+".request"); err != nil {
			return nil, err
		}
	case "execute", "parallel":
		if len(st.Request) == 0 {
			return nil, fmt.Errorf("%s: \"request\" (an ExecuteRequest) is required", what)
		}
		st.req = &pb.ExecuteRequest{}
		if err := parseProto(st.Request, st.req, what+".request"); err != nil {
			return nil, err
		}
		if st.CancelAfterRows != nil && *st.CancelAfterRows < 0 {
			return nil, fmt.Errorf("%s: cancel_after_rows must not be negative", what)
		}
		if st.Op == "parallel" {
			if st.Scans < 1 {
				return nil, fmt.Errorf("%s: \"scans\" must be at least 1", what)
			}
			if len(st.Clients) == 0 {
				st.Clients = []int{0}
			}
			for _, c := range st.Clients {
				if err := checkClient(c); err != nil {
					return nil, err
				}
			}
		}
	case "http":
		if st.Method != "GET" && st.Method != "POST" {
			return nil, fmt.Errorf("%s: method must be GET or POST", what)
		}
		if !strings.HasPrefix(st.URL, "http://127.0.0.1:") {
			return nil, fmt.Errorf("%s: url must be http://127.0.0.1:PORT/... (a test peer on loopback)", what)
		}
	case "message_stream":
		if st.TimeoutMs == nil {
			d := 500
			st.TimeoutMs = &d
		}
		if *st.TimeoutMs < 0 {
			return nil, fmt.Errorf("%s: timeout_ms must not be negative", what)
		}
	case "reattach":
		if st.Count == nil {
			n := 1
			st.Count = &n
		}
		if *st.Count < 1 {
			return nil, fmt.Errorf("%s: count must be at least 1", what)
		}
	}
	return st, nil
}
