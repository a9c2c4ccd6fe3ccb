package extauthz_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/extauthz"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
	"github.com/metalsoft-io/pdp/sync/statefile"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// stalled is a Facts whose API key lookups wait until their context ends.
type stalled struct{ pdp.Facts }

func (stalled) UserByAPIKey(ctx context.Context, _ string) (*pdp.User, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// fixture is a gRPC ext_authz server on a loopback port and a client of it.
type fixture struct {
	authz  *forwardauth.Authorizer
	rec    *pdptest.Recorder
	client authv3.AuthorizationClient
	health healthpb.HealthClient
	stop   func()       // ends Serve's context
	served func() error // waits for Serve to return, and is its error
}

// config is the forwardauth tests' route table with the trusted proxies replaced
// when proxies is not empty.
func config(t *testing.T, proxies string) *forwardauth.Config {
	t.Helper()
	path := "../forwardauth/testdata/config.yaml"
	if proxies != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		routes, _, _ := strings.Cut(string(data), "\ntrusted_proxies:")
		path = filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, []byte(routes+"\ntrusted_proxies: "+proxies+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := forwardauth.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start serves cfg over the example state (wrapped by wrap when set) until
// the test ends; tune, when set, changes the server's options.
func start(t *testing.T, cfg *forwardauth.Config, wrap func(pdp.Facts) pdp.Facts, ready func() error, tune ...func(*extauthz.Options)) *fixture {
	t.Helper()
	s, err := statefile.ParseFile("../../examples/metalcloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var facts pdp.Facts = statefile.NewFacts(s, "test")
	if wrap != nil {
		facts = wrap(facts)
	}
	rec := &pdptest.Recorder{}
	a, err := forwardauth.New(cfg, rec, facts)
	if err != nil {
		t.Fatal(err)
	}
	opts := extauthz.Options{Ready: ready, ReadyInterval: 10 * time.Millisecond}
	for _, f := range tune {
		f(&opts)
	}
	srv, err := extauthz.New(a, opts)
	if err != nil {
		t.Fatal(err)
	}
	l := testenv.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	conn, err := grpc.NewClient("passthrough:///"+l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	served := sync.OnceValue(func() error { return <-done })
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := served(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &fixture{authz: a, rec: rec, client: authv3.NewAuthorizationClient(conn), health: healthpb.NewHealthClient(conn),
		stop: cancel, served: served}
}

// envoyRequest is a CheckRequest as Envoy's ext_authz filter fills it for
// an HTTP/1.1 request from source: the request line, lower-cased headers
// (the pseudo-headers among them), a repeated header joined by commas.
func envoyRequest(method, path, source string, hdr ...string) *authv3.CheckRequest {
	h := map[string]string{
		":authority": "api.example.com", ":method": method, ":path": path, ":scheme": "http",
		"user-agent": "curl/8.5.0", "accept": "*/*", "x-forwarded-proto": "http",
		"x-request-id": "5c0a1b4e-6f0e-4d2a-9a53-0a1d1e2b3c4d",
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		k := strings.ToLower(hdr[i])
		if v, ok := h[k]; ok && !strings.HasPrefix(k, ":") && k != "user-agent" && k != "accept" {
			h[k] = v + "," + hdr[i+1]
			continue
		}
		h[k] = hdr[i+1]
	}
	var src *authv3.AttributeContext_Peer
	if source != "" {
		src = &authv3.AttributeContext_Peer{Address: socket(source, 51234)}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      src,
		Destination: &authv3.AttributeContext_Peer{Address: socket("10.1.0.20", 8080)},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.Now(),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: "1473201920345687234", Method: method, Headers: h, Path: path,
				Host: "api.example.com", Scheme: "http", Protocol: "HTTP/1.1",
			},
		},
	}}
}

func socket(addr string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

// answer is a CheckResponse reduced to what Envoy acts on, decision id
// left out (a denial made before the engine gets a random one).
type answer struct {
	Code    codes.Code
	Status  int // HTTP status: 200 on OK
	Set     map[string]string
	Remove  []string
	Reasons []string // of the body
}

func reduce(t *testing.T, res *authv3.CheckResponse) answer {
	t.Helper()
	a := answer{Code: codes.Code(res.GetStatus().GetCode()), Set: map[string]string{}}
	var hs []*corev3.HeaderValueOption
	switch r := res.GetHttpResponse().(type) {
	case *authv3.CheckResponse_OkResponse:
		a.Status = 200
		hs, a.Remove = r.OkResponse.GetHeaders(), r.OkResponse.GetHeadersToRemove()
	case *authv3.CheckResponse_DeniedResponse:
		a.Status = int(r.DeniedResponse.GetStatus().GetCode())
		hs = r.DeniedResponse.GetHeaders()
		var body struct {
			Allow      bool     `json:"allow"`
			Reasons    []string `json:"reasons"`
			DecisionID string   `json:"decision_id"`
		}
		if err := json.Unmarshal([]byte(r.DeniedResponse.GetBody()), &body); err != nil || body.Allow || body.DecisionID == "" {
			t.Fatalf("denial body %q: %v", r.DeniedResponse.GetBody(), err)
		}
		a.Reasons = body.Reasons
	default:
		t.Fatalf("no http response in %v", res)
	}
	for _, h := range hs {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Fatalf("header %s appended, want overwritten", h.GetHeader().GetKey())
		}
		if k := h.GetHeader().GetKey(); k != "x-pdp-decision-id" {
			a.Set[k] = h.GetHeader().GetValue()
		}
	}
	return a
}

// httpAnswer is what /v1/authz answers for the same request in Envoy's
// HTTP path form, from remote, reduced as reduce does.
func httpAnswer(f *fixture, method, path string, remote netip.Addr, hdr ...string) answer {
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Add(hdr[i], hdr[i+1])
	}
	res := f.authz.Authorize(context.Background(), forwardauth.Request{Method: method, URI: forwardauth.EnvoyPrefix + path, Header: forwardauth.HTTPHeader(h), RemoteAddr: remote})
	f.rec.Take()
	a := answer{Status: res.Status, Set: map[string]string{}}
	switch res.Status {
	case 200:
		a.Code = codes.OK
	case 401:
		a.Code = codes.Unauthenticated
	default:
		a.Code = codes.PermissionDenied
	}
	for _, kv := range res.Header {
		switch {
		case strings.EqualFold(kv[0], forwardauth.DecisionIDHeader):
		case kv[1] != "":
			a.Set[strings.ToLower(kv[0])] = kv[1]
		case res.Status == 200:
			a.Remove = append(a.Remove, strings.ToLower(kv[0]))
		}
	}
	if res.Status != 200 {
		a.Set["content-type"] = "application/json"
		a.Reasons = res.Decision.Reasons
	}
	return a
}

// TestRouteTable sends every case of the forward-auth route table as Envoy
// would and checks the request the engine was asked, and the answer
// against /v1/authz's.
func TestRouteTable(t *testing.T) {
	f := start(t, config(t, ""), nil, nil)
	for _, c := range pdptest.RouteCases(t) {
		t.Run(c.Method+" "+c.URI, func(t *testing.T) {
			res, err := f.client.Check(context.Background(), envoyRequest(c.Method, c.URI, "192.0.2.7", "X-API-Key", "ops-demo-key"))
			if err != nil {
				t.Fatal(err)
			}
			got, req := reduce(t, res), f.rec.Take()
			if c.Reason != "" {
				if got.Code != codes.PermissionDenied || got.Status != 403 || !reflect.DeepEqual(got.Reasons, []string{c.Reason}) || req != nil {
					t.Fatalf("got %+v (engine asked: %v), want 403 %s", got, req != nil, c.Reason)
				}
			} else {
				want := c.Check("u-ops")
				if got.Code != codes.OK || req == nil || !reflect.DeepEqual(*req, want) {
					t.Fatalf("got %+v, request %+v, want OK and %+v", got, req, want)
				}
			}
			if !strings.HasPrefix(c.URI, "/") {
				return // not a path Envoy sends, nor one /v1/authz/envoy can carry
			}
			if want := httpAnswer(f, c.Method, c.URI, netip.MustParseAddr("192.0.2.7"), "X-API-Key", "ops-demo-key"); !reflect.DeepEqual(got, want) {
				t.Fatalf("gRPC answer %+v, /v1/authz answers %+v", got, want)
			}
		})
	}
}

// TestIdentity covers the identity cases of the forward-auth tests: every
// answer is /v1/authz's for the same request from a trusted proxy.
func TestIdentity(t *testing.T) {
	f := start(t, config(t, ""), nil, nil)
	const path = "/api/v2/infrastructures/inf-web"
	cases := []struct {
		name   string
		header []string
		code   codes.Code
		user   string
	}{
		{"api key header", []string{"X-API-Key", "ops-demo-key"}, codes.OK, "u-ops"},
		{"api key bearer", []string{"Authorization", "Bearer root-demo-key"}, codes.OK, "u-root"},
		{"api key bearer lower-case scheme", []string{"Authorization", "bearer root-demo-key"}, codes.OK, "u-root"},
		{"api key header wins", []string{"X-API-Key", "ops-demo-key", "Authorization", "Bearer root-demo-key"}, codes.OK, "u-ops"},
		{"unknown api key", []string{"X-API-Key", "nope"}, codes.Unauthenticated, ""},
		{"unknown api key no fallback", []string{"X-API-Key", "nope", "X-Auth-Request-User", "u-root"}, codes.Unauthenticated, ""},
		{"unknown bearer", []string{"Authorization", "Bearer nope"}, codes.Unauthenticated, ""},
		{"basic auth", []string{"Authorization", "Basic dTpw"}, codes.Unauthenticated, ""},
		{"basic auth is not pdp's", []string{"Authorization", "Basic dTpw", "X-Auth-Request-User", "u-mktg"}, codes.OK, "u-mktg"},
		{"empty bearer", []string{"Authorization", "Bearer ", "X-Auth-Request-User", "u-mktg"}, codes.Unauthenticated, ""},
		{"trusted header id", []string{"X-Auth-Request-User", "u-mktg"}, codes.OK, "u-mktg"},
		{"trusted header email", []string{"X-Auth-Request-User", "MKTG@company.com"}, codes.OK, "u-mktg"},
		{"trusted header unknown", []string{"X-Auth-Request-User", "u-nobody"}, codes.Unauthenticated, ""},
		{"trusted header denied by engine", []string{"X-Auth-Request-User", "u-bi"}, codes.PermissionDenied, ""},
		{"client's upstream headers replaced", []string{"X-API-Key", "ops-demo-key", "X-Auth-Request-Email", "root@metalsoft.example"}, codes.OK, "u-ops"},
		{"no credential", nil, codes.Unauthenticated, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := f.client.Check(context.Background(), envoyRequest("GET", path, "127.0.0.1", c.header...))
			if err != nil {
				t.Fatal(err)
			}
			got := reduce(t, res)
			f.rec.Take()
			if got.Code != c.code || got.Set["x-auth-request-user"] != c.user {
				t.Fatalf("got %+v, want %v for %q", got, c.code, c.user)
			}
			if _, ok := got.Set["www-authenticate"]; ok != (c.code == codes.Unauthenticated) {
				t.Fatalf("WWW-Authenticate present %v on %v", ok, c.code)
			}
			if want := httpAnswer(f, "GET", path, netip.MustParseAddr("127.0.0.1"), c.header...); !reflect.DeepEqual(got, want) {
				t.Fatalf("gRPC answer %+v, /v1/authz answers %+v", got, want)
			}
		})
	}
}

// TestRepeatedHeaders: Envoy joins a repeated header with commas in
// headers, keeps each line in header_map (encode_raw_headers); neither
// identifies anybody.
func TestRepeatedHeaders(t *testing.T) {
	f := start(t, config(t, ""), nil, nil)
	joined := envoyRequest("GET", "/ui", "127.0.0.1", "X-API-Key", "ops-demo-key", "X-API-Key", "root-demo-key")
	raw := envoyRequest("GET", "/ui", "127.0.0.1")
	http := raw.GetAttributes().GetRequest().GetHttp()
	http.Headers = nil
	http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: ":path", RawValue: []byte("/ui")}, {Key: "x-api-key", RawValue: []byte("ops-demo-key")}, {Key: "x-api-key", RawValue: []byte("root-demo-key")}}}
	single := envoyRequest("GET", "/ui", "127.0.0.1")
	single.GetAttributes().GetRequest().GetHttp().Headers = nil
	single.GetAttributes().GetRequest().GetHttp().HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "x-api-key", RawValue: []byte("ops-demo-key")}}}
	for name, c := range map[string]struct {
		req  *authv3.CheckRequest
		code codes.Code
	}{"joined": {joined, codes.Unauthenticated}, "header_map repeated": {raw, codes.Unauthenticated}, "header_map": {single, codes.OK}} {
		res, err := f.client.Check(context.Background(), c.req)
		if err != nil {
			t.Fatal(err)
		}
		if got := reduce(t, res); got.Code != c.code {
			t.Errorf("%s: got %+v, want %v", name, got, c.code)
		}
	}
}

// TestTrust: the trusted identity header counts only when both Envoy (the
// gRPC peer) and the source of the original request are trusted proxies.
func TestTrust(t *testing.T) {
	cases := []struct {
		name    string
		proxies string
		source  string
		code    codes.Code
	}{
		{"both trusted", "", "10.1.2.3", codes.OK},
		{"source untrusted", "", "192.0.2.7", codes.Unauthenticated},
		{"source mapped", "", "::ffff:127.0.0.1", codes.OK},
		{"no source", "", "", codes.Unauthenticated},
		{"bad source", "", "not-an-address", codes.Unauthenticated},
		{"peer untrusted", "[10.1.0.0/16]", "10.1.2.3", codes.Unauthenticated},
		{"nothing trusted", "[]", "127.0.0.1", codes.Unauthenticated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := start(t, config(t, c.proxies), nil, nil)
			res, err := f.client.Check(context.Background(), envoyRequest("GET", "/ui", c.source, "X-Auth-Request-User", "u-root"))
			if err != nil {
				t.Fatal(err)
			}
			if got := reduce(t, res); got.Code != c.code {
				t.Fatalf("got %+v, want %v", got, c.code)
			}
			if c.code != codes.OK && f.rec.Take() != nil {
				t.Fatal("engine asked for an untrusted identity")
			}
		})
	}
}

func TestMalformedCheckRequests(t *testing.T) {
	f := start(t, config(t, ""), nil, nil)
	noPath := envoyRequest("GET", "", "127.0.0.1", "X-API-Key", "ops-demo-key")
	noMethod := envoyRequest("", "/ui", "127.0.0.1", "X-API-Key", "ops-demo-key")
	for name, req := range map[string]*authv3.CheckRequest{
		"empty": {}, "no http": {Attributes: &authv3.AttributeContext{}}, "no path": noPath, "no method": noMethod,
		"authority form": envoyRequest("CONNECT", "api.example.com:443", "127.0.0.1", "X-API-Key", "ops-demo-key"),
	} {
		res, err := f.client.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if got := reduce(t, res); got.Code != codes.PermissionDenied || got.Status != 403 || got.Reasons[0] != pdp.ReasonInvalidRequest {
			t.Errorf("%s: got %+v, want 403 invalid_request", name, got)
		}
	}
}

// TestOversizedCheckRequest: a CheckRequest over the message limit is
// refused before it is decoded; one within it is decided.
func TestOversizedCheckRequest(t *testing.T) {
	f := start(t, config(t, ""), nil, nil)
	big := envoyRequest("GET", "/ui", "127.0.0.1", "X-API-Key", "ops-demo-key", "X-Padding", strings.Repeat("a", extauthz.DefaultMaxMessageBytes))
	if _, err := f.client.Check(context.Background(), big); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a %d-byte header: %v, want ResourceExhausted", extauthz.DefaultMaxMessageBytes, err)
	}
	fits := envoyRequest("GET", "/ui", "127.0.0.1", "X-API-Key", "ops-demo-key", "X-Padding", strings.Repeat("a", extauthz.DefaultMaxMessageBytes/2))
	res, err := f.client.Check(context.Background(), fits)
	if err != nil {
		t.Fatal(err)
	}
	if got := reduce(t, res); got.Code != codes.OK {
		t.Errorf("a request within the limit: got %+v, want OK", got)
	}
}

func TestStateUnavailableDenies(t *testing.T) {
	f := start(t, config(t, ""), func(facts pdp.Facts) pdp.Facts { return pdptest.KeysUnavailable{Facts: facts} }, nil)
	res, err := f.client.Check(context.Background(), envoyRequest("GET", "/ui", "127.0.0.1", "X-API-Key", "ops-demo-key"))
	if err != nil {
		t.Fatal(err)
	}
	if got := reduce(t, res); got.Code != codes.PermissionDenied || got.Reasons[0] != pdp.ReasonStateUnavailable {
		t.Fatalf("got %+v, want 403 state_unavailable", got)
	}
}

// TestEvalTimeout: a Check whose facts never arrive is bounded by the
// evaluation budget (DefaultEvalTimeout here), not by the caller's
// deadline, and denied; the client sets none.
func TestEvalTimeout(t *testing.T) {
	f := start(t, config(t, ""), func(facts pdp.Facts) pdp.Facts { return stalled{facts} }, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := f.client.Check(ctx, envoyRequest("GET", "/ui", "127.0.0.1", "X-API-Key", "ops-demo-key"))
	if err != nil {
		t.Fatalf("Check: %v (the evaluation budget did not end it)", err)
	}
	if got := reduce(t, res); got.Code == codes.OK {
		t.Fatalf("got %+v, want a denial", got)
	}
}

func TestHealth(t *testing.T) {
	var mu sync.Mutex
	var readyErr error
	f := start(t, config(t, ""), nil, func() error { mu.Lock(); defer mu.Unlock(); return readyErr })
	status := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		res, err := f.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetStatus()
	}
	for _, svc := range []string{"", extauthz.ServiceName} {
		if got := status(svc); got != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%q: %v, want SERVING", svc, got)
		}
	}
	mu.Lock()
	readyErr = pdp.ErrUnavailable
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for status(extauthz.ServiceName) != healthpb.HealthCheckResponse_NOT_SERVING {
		if time.Now().After(deadline) {
			t.Fatal("health still SERVING 5 s after the state became unready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShutdownDelay: once Serve's context ends, the port keeps answering
// checks for ShutdownDelay, its health service NOT_SERVING, then stops.
func TestShutdownDelay(t *testing.T) {
	const delay = 400 * time.Millisecond
	f := start(t, config(t, ""), nil, nil, func(o *extauthz.Options) { o.ShutdownDelay = delay })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopped := time.Now()
	f.stop()
	for {
		res, err := f.health.Check(ctx, &healthpb.HealthCheckRequest{Service: extauthz.ServiceName})
		if err != nil {
			t.Fatalf("health while draining: %v", err)
		}
		if res.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, err := f.client.Check(ctx, envoyRequest("GET", "/ui", "127.0.0.1", "X-API-Key", "ops-demo-key"))
	if err != nil {
		t.Fatalf("check while draining: %v", err)
	}
	if got := reduce(t, res); got.Code != codes.OK {
		t.Errorf("check while draining: %+v, want the decision as before", got)
	}
	if err := f.served(); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if waited := time.Since(stopped); waited < delay {
		t.Errorf("Serve returned %s after its context ended, before the %s delay", waited, delay)
	}
}
