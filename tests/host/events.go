package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	sdkgrpc "github.com/turbot/steampipe-plugin-sdk/v5/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// event is one JSON line on stdout. Keys keep their insertion order so that
// "event" (and "step") come first, which makes the output easy to read.
type event struct {
	fields []eventField
}

type eventField struct {
	key string
	val interface{}
}

func newEvent(name string) *event {
	return &event{fields: []eventField{{"event", name}}}
}

// newStepEvent starts an event that belongs to step index i.
func newStepEvent(name string, i int) *event {
	return newEvent(name).set("step", i)
}

// set adds a key, or replaces its value if it is already present.
func (e *event) set(key string, val interface{}) *event {
	for i := range e.fields {
		if e.fields[i].key == key {
			e.fields[i].val = val
			return e
		}
	}
	e.fields = append(e.fields, eventField{key, val})
	return e
}

// setErr adds the error fields every failing operation reports: the Go error
// string (what the FDW shows to Postgres), the gRPC status code name and the
// status message.
func (e *event) setErr(err error) *event {
	if err == nil {
		return e
	}
	var he *hostError
	if errors.As(err, &he) {
		return e.set("error", err.Error()).set("code", "HostError").set("message", he.msg)
	}
	st, _ := status.FromError(err)
	return e.set("error", err.Error()).
		set("code", st.Code().String()).
		set("message", st.Message())
}

// setSDKErr adds "sdk_error": what the SDK's PluginClient method for call
// returns for err (grpc.HandleGrpcError), which is what the plugin manager
// sees and logs: the bare status message, or "" when the SDK swallows the
// error (Unimplemented, for backwards compatibility).
func (e *event) setSDKErr(err error, call string) *event {
	var he *hostError
	if err == nil || errors.As(err, &he) {
		return e
	}
	msg := ""
	if sdkErr := sdkgrpc.HandleGrpcError(err, "plugin", call); sdkErr != nil {
		msg = sdkErr.Error()
	}
	return e.set("sdk_error", msg)
}

func (e *event) MarshalJSON() ([]byte, error) {
	buf := []byte{'{'}
	for i, f := range e.fields {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, marshalValue(f.key)...)
		buf = append(buf, ':')
		buf = append(buf, marshalValue(f.val)...)
	}
	return append(buf, '}'), nil
}

// marshalValue is json.Marshal without HTML escaping (so "<" stays "<").
func marshalValue(v interface{}) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		b.Reset()
		enc.Encode("HOST_MARSHAL_ERROR: " + err.Error())
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// hostError is an error produced by sphost itself rather than by the plugin
// or gRPC; it is reported with code "HostError".
type hostError struct {
	msg string
}

func (e *hostError) Error() string { return e.msg }

func hostErrorf(format string, args ...interface{}) error {
	return &hostError{msg: fmt.Sprintf(format, args...)}
}

// emitter writes events as JSON lines. It is safe for concurrent use and
// flushes after every line so that a reader sees events as they happen.
type emitter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func newEmitter(w io.Writer) *emitter {
	return &emitter{w: bufio.NewWriter(w)}
}

func (em *emitter) emit(e *event) {
	line := marshalValue(e)
	em.mu.Lock()
	defer em.mu.Unlock()
	em.w.Write(line)
	em.w.WriteByte('\n')
	em.w.Flush()
}

var protoJSON = protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true}

// pjson renders a protobuf message as protojson, embedded verbatim in an event.
func pjson(m proto.Message) json.RawMessage {
	b, err := protoJSON.Marshal(m)
	if err != nil {
		s, _ := json.Marshal("PROTOJSON_ERROR: " + err.Error())
		return s
	}
	return b
}
