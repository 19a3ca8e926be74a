// Command sphost plays the Steampipe CLI's plugin manager and the Steampipe
// Postgres FDW against a plugin binary, with their own client code:
// hashicorp/go-plugin v1.7.0 (the plugin manager's version) and
// steampipe-plugin-sdk v5.14.0's grpc client (NewPluginClient,
// NewPluginClientFromReattach, shared.Handshake, shared.WrapperPlugin) over
// grpc-go v1.73.0, the version the CLI and the FDW link. It
// starts the plugin exactly as the plugin manager does, runs the manager's
// init sequence, then plays the steps of a JSON scenario against it and
// reports everything that happened as JSON lines on stdout.
//
// Usage: sphost SCENARIO.json   (or "-" to read the scenario from stdin)
//
// See README.md in this directory for the scenario format and the events.
package main

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	sdkgrpc "github.com/turbot/steampipe-plugin-sdk/v5/grpc"
	pb "github.com/turbot/steampipe-plugin-sdk/v5/grpc/proto"
	"github.com/turbot/steampipe-plugin-sdk/v5/grpc/shared"
)

const (
	// The SDK's handshake cookie; the skip_cookie mode runs the plugin
	// without it.
	cookieKey = "MANTIX_PLUGIN_MAGIC_COOKIE"

	// What go-plugin logs from Client.Kill when it has to SIGKILL the plugin.
	forcedKillMessage = "plugin failed to exit gracefully"

	noCookieTimeout = 10 * time.Second

	// The plugin manager dispenses a plugin under its image ref.
	defaultPluginName = "hub.steampipe.io/plugins/turbot/aws@latest"
)

// pluginSet is the plugin manager's plugin map: the SDK's WrapperPlugin
// under the plugin's name (plugin_manager.go startPluginProcess).
func pluginSet(name string) map[string]plugin.Plugin {
	return map[string]plugin.Plugin{name: &shared.WrapperPlugin{}}
}

func init() {
	// Keep the main goroutine on the main OS thread: the plugin is spawned
	// from it with a parent-death signal (see procattr_linux.go), which Linux
	// ties to the spawning thread.
	runtime.LockOSThread()
}

func main() {
	os.Exit(run())
}

func run() int {
	em := newEmitter(os.Stdout)
	fatal := func(format string, args ...interface{}) int {
		msg := fmt.Sprintf(format, args...)
		fmt.Fprintln(os.Stderr, "sphost: "+msg)
		em.emit(newEvent("fatal").set("error", msg))
		return 1
	}

	if len(os.Args) != 2 {
		return fatal("usage: sphost SCENARIO.json (or - for stdin)")
	}
	data, err := readScenario(os.Args[1])
	if err != nil {
		return fatal("reading scenario: %v", err)
	}
	sc, err := parseScenario(data)
	if err != nil {
		return fatal("bad scenario: %v", err)
	}

	if sc.skipCookie {
		return runWithoutCookie(sc, em, fatal)
	}

	h := &host{sc: sc, em: em}
	return h.run(fatal)
}

// logOutput returns the writer and level for sphost's own hclog loggers,
// from HOST_LOG_LEVEL (trace, debug, info, warn, error or off; default warn).
func logOutput() (io.Writer, hclog.Level) {
	name := strings.ToLower(strings.TrimSpace(os.Getenv("HOST_LOG_LEVEL")))
	switch name {
	case "":
		return os.Stderr, hclog.Warn
	case "off", "none":
		return io.Discard, hclog.Error
	}
	level := hclog.LevelFromString(name)
	if level == hclog.NoLevel {
		fmt.Fprintf(os.Stderr, "sphost: unknown HOST_LOG_LEVEL %q, using warn\n", name)
		level = hclog.Warn
	}
	return os.Stderr, level
}

// killSink watches client 0's logger for go-plugin's forced-kill warning.
type killSink struct {
	forced int32
}

func (s *killSink) Accept(_ string, _ hclog.Level, msg string, _ ...interface{}) {
	if msg == forcedKillMessage {
		atomic.StoreInt32(&s.forced, 1)
	}
}

// hostClient is one SDK plugin client connected to the plugin: client 0
// started the process; the others reattached to it like FDW backends do.
// stub is the SDK's WrapperPluginClient (the same calls the SDK's
// PluginClient methods make, but with the gRPC status still attached, so
// events can report the code as well as what the SDK client returns).
type hostClient struct {
	id   int
	sdk  *sdkgrpc.PluginClient
	stub shared.WrapperPluginClient
}

type host struct {
	sc *scenario
	em *emitter

	sink           *killSink
	reattachLogger hclog.Logger
	stderrFile     *os.File

	main     *plugin.Client
	reattach *plugin.ReattachConfig
	network  string
	address  string
	pid      int

	// clients[i] is client i; nil when its reattach failed.
	clients []*hostClient

	killMu sync.Mutex
	killed bool
}

func (h *host) run(fatal func(string, ...interface{}) int) int {
	out, level := logOutput()
	h.sink = &killSink{}
	logger := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "sphost", Level: level, Output: out})
	logger.RegisterSink(h.sink)
	h.reattachLogger = hclog.New(&hclog.LoggerOptions{Name: "sphost.reattach", Level: level, Output: out})

	var stderr io.Writer = io.Discard
	if h.sc.stderrFile != "" {
		f, err := os.OpenFile(h.sc.stderrFile, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return fatal("opening stderr_file: %v", err)
		}
		h.stderrFile = f
		stderr = f
	}
	defer h.closeStderrFile()

	routeSDKLog(level)
	cmd := exec.Command(h.sc.plugin, h.sc.args...)
	setProcAttr(cmd)
	config := &plugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		Plugins:          pluginSet(h.sc.pluginName),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     30 * time.Second,
		Stderr:           stderr,
		Logger:           logger,
		// With AutoMTLS, go-plugin passes a fresh client certificate in
		// PLUGIN_CLIENT_CERT and dials the plugin over TLS, trusting only
		// the certificate the plugin returns in its handshake line.
		AutoMTLS: h.sc.autoMTLS,
	}
	h.main = plugin.NewClient(config)
	h.catchSignals()

	// go-plugin appends os.Environ() after Cmd.Env, and exec keeps the last
	// value of a duplicate key, so the host's own value would win over the
	// scenario's. Put the scenario's variables into the host environment
	// while the process is spawned, so that the plugin sees them.
	restoreEnv := overrideEnv(h.sc.env)
	t0 := time.Now()
	// NewPluginClient starts the process (Client()) and dispenses the
	// WrapperPlugin, as the plugin manager's initializePlugin does.
	sdkClient, err := sdkgrpc.NewPluginClient(h.main, h.sc.pluginName)
	startMs := time.Since(t0).Milliseconds()
	restoreEnv()
	if err != nil {
		code := fatal("starting plugin: %v", err)
		h.killMain()
		return code
	}
	// Steampipe never pings; the health check is reported for the tests.
	var pingErr error
	if rpcClient, err := h.main.Client(); err != nil {
		pingErr = err
	} else {
		pingErr = rpcClient.Ping()
	}
	h.clients = []*hostClient{{id: 0, sdk: sdkClient, stub: sdkClient.Stub}}

	h.reattach = h.main.ReattachConfig()
	if h.reattach == nil || h.reattach.Addr == nil {
		code := fatal("plugin started but go-plugin has no reattach config")
		h.killMain()
		return code
	}
	h.network = h.reattach.Addr.Network()
	h.address = h.reattach.Addr.String()
	h.pid = h.reattach.Pid
	h.em.emit(newEvent("started").
		set("pid", h.pid).
		set("network", h.network).
		set("address", h.address).
		set("protocol", string(h.reattach.Protocol)).
		set("tls", usesServerCert(config)).
		set("ms", startMs))

	ping := newEvent("ping").set("ok", pingErr == nil)
	h.em.emit(ping.setErr(pingErr))

	if h.sc.init {
		h.initSequence()
	}
	for _, st := range h.sc.steps {
		h.runStep(st)
	}

	// Reattached clients are left as the FDW leaves them: closing one
	// (GRPCClient.Close) would call GRPCController/Shutdown on the shared
	// plugin. Their connections end with this process.
	h.killMain()
	return 0
}

// usesServerCert reports whether client 0 dials over TLS with the server
// certificate from the handshake line as its only root, which go-plugin sets
// up (in the config it was given) only for AutoMTLS.
func usesServerCert(config *plugin.ClientConfig) bool {
	return config.TLSConfig != nil && config.TLSConfig.RootCAs != nil
}

// killMain kills client 0 (Shutdown, then SIGKILL after 2 s) once.
func (h *host) killMain() {
	h.killMu.Lock()
	defer h.killMu.Unlock()
	if h.killed || h.main == nil {
		return
	}
	h.main.Kill()
	h.killed = true
}

func (h *host) closeStderrFile() {
	if h.stderrFile != nil {
		h.stderrFile.Close()
	}
}

// catchSignals makes SIGINT/SIGTERM kill the plugin before sphost exits.
func (h *host) catchSignals() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		fmt.Fprintf(os.Stderr, "sphost: got %v, killing the plugin\n", sig)
		h.em.emit(newEvent("fatal").set("error", "sphost interrupted by "+sig.String()))
		h.main.Kill()
		h.closeStderrFile()
		os.Exit(1)
	}()
}

// overrideEnv sets vars in the host's environment and returns a function
// that restores the previous values.
func overrideEnv(vars map[string]string) func() {
	type prev struct {
		val string
		set bool
	}
	saved := map[string]prev{}
	for k, v := range vars {
		old, ok := os.LookupEnv(k)
		saved[k] = prev{old, ok}
		os.Setenv(k, v)
	}
	return func() {
		for k, p := range saved {
			if p.set {
				os.Setenv(k, p.val)
			} else {
				os.Unsetenv(k)
			}
		}
	}
}

// initSequence is what the plugin manager does after starting a plugin
// (plugin_manager.go initializePlugin). Errors are reported and the sequence
// carries on.
func (h *host) initSequence() {
	stub := h.clients[0].stub
	r1, err := stub.GetSupportedOperations(&pb.GetSupportedOperationsRequest{})
	h.emitInit("GetSupportedOperations", r1, err)

	r2, err := stub.SetAllConnectionConfigs(&pb.SetAllConnectionConfigsRequest{
		Configs:        h.sc.connections,
		MaxCacheSizeMb: -1,
	})
	h.emitInit("SetAllConnectionConfigs", r2, err)

	r3, err := stub.SetCacheOptions(h.sc.cacheOptions)
	h.emitInit("SetCacheOptions", r3, err)

	r4, err := stub.SetRateLimiters(&pb.SetRateLimitersRequest{Definitions: h.sc.rateLimiters})
	h.emitInit("SetRateLimiters", r4, err)

	first := ""
	if len(h.sc.connections) > 0 {
		first = h.sc.connections[0].GetConnection()
	}
	r5, err := stub.GetSchema(&pb.GetSchemaRequest{Connection: first})
	h.emitInit("GetSchema", r5, err)
}

// runWithoutCookie runs the plugin binary directly, without the magic cookie,
// and reports what it printed and how it exited.
func runWithoutCookie(sc *scenario, em *emitter, fatal func(string, ...interface{}) int) int {
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, cookieKey+"=") {
			env = append(env, kv)
		}
	}
	// The scenario may still set the cookie explicitly (e.g. a wrong value).
	for k, v := range sc.env {
		env = append(env, k+"="+v)
	}

	cmd := exec.Command(sc.plugin, sc.args...)
	cmd.Env = env
	setGroupProcAttr(cmd)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return fatal("starting plugin: %v", err)
	}
	var timedOut int32
	timer := time.AfterFunc(noCookieTimeout, func() {
		atomic.StoreInt32(&timedOut, 1)
		killGroup(cmd)
	})
	waitErr := cmd.Wait()
	timer.Stop()
	ms := time.Since(t0).Milliseconds()

	if sc.stderrFile != "" {
		if err := os.WriteFile(sc.stderrFile, stderr.Bytes(), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "sphost: writing stderr_file: %v\n", err)
		}
	}
	e := newEvent("no_cookie").
		set("exit_code", cmd.ProcessState.ExitCode()).
		set("stdout", stdout.String()).
		set("stderr", stderr.String()).
		set("timed_out", atomic.LoadInt32(&timedOut) == 1).
		set("ms", ms)
	if waitErr != nil {
		if _, isExit := waitErr.(*exec.ExitError); !isExit {
			e.set("wait_error", waitErr.Error())
		}
	}
	em.emit(e)
	return 0
}

// simpleAddr is a net.Addr rebuilt from the (network, address) strings of a
// reattach config, as Steampipe's pluginshared.ReattachConfig.Convert does
// with the plugin manager's reply before the FDW reattaches.
type simpleAddr struct {
	network, address string
}

func (a simpleAddr) Network() string { return a.network }
func (a simpleAddr) String() string  { return a.address }

// routeSDKLog sends the SDK client's standard-library log lines ("[TRACE]
// NewPluginClient ...") to stderr at debug and trace, and nowhere otherwise.
func routeSDKLog(level hclog.Level) {
	if level <= hclog.Debug {
		log.SetOutput(os.Stderr)
	} else {
		log.SetOutput(io.Discard)
	}
}
