package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/metalsoft-io/pdp/internal/testenv"
)

// TestGRPCExtAuthz: with --grpc-addr the binary answers Envoy's Check from
// the route table of --config and the real engine, serves gRPC health, and
// counts the checks under the ext_authz endpoint.
func TestGRPCExtAuthz(t *testing.T) {
	root := testenv.RepoRoot()
	grpcAddr := testenv.FreeAddr(t)
	p := startPDP(t, nil, "--state", filepath.Join(root, "examples", "metalcloud.yaml"),
		"--config", filepath.Join(root, "examples", "routes.yaml"), "--grpc-addr", grpcAddr)
	conn, err := grpc.NewClient("passthrough:///"+grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	check := func(method, path string, hdr map[string]string) *authv3.CheckResponse {
		t.Helper()
		src := &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}
		res, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source:  &authv3.AttributeContext_Peer{Address: src},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: method, Path: path, Headers: hdr}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	allow := check("PATCH", "/api/v2/infrastructures/inf-web", map[string]string{"x-api-key": "ops-demo-key"})
	if codes.Code(allow.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("allow: %v", allow)
	}
	if hs := allow.GetOkResponse().GetHeaders(); len(hs) == 0 || hs[0].GetHeader().GetKey() != "x-auth-request-user" || hs[0].GetHeader().GetValue() != "u-ops" {
		t.Fatalf("allow headers: %v", hs)
	}
	deny := check("PATCH", "/api/v2/infrastructures/inf-erp", map[string]string{"x-auth-request-user": "u-mktg"})
	if codes.Code(deny.GetStatus().GetCode()) != codes.PermissionDenied || deny.GetDeniedResponse().GetStatus().GetCode() != 403 ||
		!strings.Contains(deny.GetDeniedResponse().GetBody(), `"allow":false`) {
		t.Fatalf("deny: %v", deny)
	}
	unknown := check("GET", "/ui", nil)
	if codes.Code(unknown.GetStatus().GetCode()) != codes.Unauthenticated || unknown.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Fatalf("no credential: %v", unknown)
	}
	resp, err := http.Get(p.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `pdp_http_requests_total{code="403",endpoint="ext_authz"} 1`) {
		t.Errorf("metrics lack the ext_authz denial:\n%s", b)
	}
}
