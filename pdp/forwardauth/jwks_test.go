package forwardauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
)

// oidcProvider is a local OpenID Connect provider: a discovery document and
// a key set that can be rotated or taken down.
type oidcProvider struct {
	srv *httptest.Server

	mu       sync.Mutex
	keys     map[string]*ecdsa.PrivateKey // kid → signing key, all published
	down     bool
	jwksHits int
	lastOK   time.Time // of the last key set served
}

func newOIDCProvider(t *testing.T) *oidcProvider {
	t.Helper()
	p := &oidcProvider{keys: map[string]*ecdsa.PrivateKey{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/keys"})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.jwksHits++
		if p.down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var set jose.JSONWebKeySet
		for kid, k := range p.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"})
		}
		json.NewEncoder(w).Encode(set)
		p.lastOK = time.Now()
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// rotate publishes only a new key kid.
func (p *oidcProvider) rotate(t *testing.T, kid string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = map[string]*ecdsa.PrivateKey{kid: k}
}

func (p *oidcProvider) token(t *testing.T, kid string) string {
	t.Helper()
	p.mu.Lock()
	k := p.keys[kid]
	p.mu.Unlock()
	now := time.Now()
	return sign(t, jose.ES256, k, kid, jwt.Claims{Issuer: p.srv.URL, Audience: jwt.Audience{"pdp"}, Subject: "u-ops",
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))})
}

func (p *oidcProvider) set(f func(p *oidcProvider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// remoteAuthorizer is an Authorizer whose keys come from p, by discovery
// or by the key set URL.
func remoteAuthorizer(t *testing.T, p *oidcProvider, source, timing string) *forwardauth.Authorizer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	conf := "routes: [{method: GET, path: /ui, action: access, kind: ui}]\n" +
		"identity:\n  jwt: {" + source + ", issuer: " + p.srv.URL + ", audiences: [pdp], " + timing + "}\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _ := newAuthorizer(t, path)
	t.Cleanup(a.Close)
	return a
}

func bearerStatus(a *forwardauth.Authorizer, token string) int {
	return a.Authorize(context.Background(), forwardauth.Request{Method: "GET", URI: "/v1/authz/envoy/ui",
		RemoteAddr: loopback, Header: header("Authorization", "Bearer "+token)}).Status
}

// TestRemoteKeysRotation: a token signed by a key published after the last
// fetch is accepted once the unknown kid has refreshed the set; unknown
// kids refresh at most every min_refresh_interval.
func TestRemoteKeysRotation(t *testing.T) {
	p := newOIDCProvider(t)
	p.rotate(t, "k1")
	a := remoteAuthorizer(t, p, "discovery: true", "refresh_interval: 1h, min_refresh_interval: 1s, max_stale: 2h")
	if got := bearerStatus(a, p.token(t, "k1")); got != 200 {
		t.Fatalf("k1: %d, want 200", got)
	}
	p.rotate(t, "k2")
	time.Sleep(1100 * time.Millisecond) // past min_refresh_interval since the first fetch
	if got := bearerStatus(a, p.token(t, "k2")); got != 200 {
		t.Fatalf("k2 after rotation: %d, want 200", got)
	}
	// The old key is gone with the rotation; a kid nobody publishes asks
	// the provider at most once per min_refresh_interval.
	p.set(func(p *oidcProvider) { p.jwksHits = 0 })
	for i := 0; i < 5; i++ {
		if got := bearerStatus(a, forged(t, p.srv.URL)); got != 401 {
			t.Fatalf("unknown kid: %d, want 401", got)
		}
	}
	var hits int
	p.set(func(p *oidcProvider) { hits = p.jwksHits })
	if hits > 1 {
		t.Fatalf("%d fetches for unknown kids within min_refresh_interval, want at most 1", hits)
	}
	if s := a.KeyStats(); !s.Remote || s.Fetches < 2 || s.Stale {
		t.Fatalf("stats %+v", s)
	}
}

// forged is a token under a kid the provider never published.
func forged(t *testing.T, issuer string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	return sign(t, jose.ES256, k, "nobody", jwt.Claims{Issuer: issuer, Audience: jwt.Audience{"pdp"}, Subject: "u-root",
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))})
}

// TestRemoteKeysOutage: while the provider is down the last key set is
// served, for max_stale after its last valid fetch; then every token is
// refused (401) until the provider is back.
func TestRemoteKeysOutage(t *testing.T) {
	p := newOIDCProvider(t)
	p.rotate(t, "k1")
	const maxStale = 3 * time.Second
	a := remoteAuthorizer(t, p, "jwks_url: "+p.srv.URL+"/keys", "refresh_interval: 1s, min_refresh_interval: 1s, max_stale: 3s")
	tok := p.token(t, "k1")
	if got := bearerStatus(a, tok); got != 200 {
		t.Fatalf("before the outage: %d, want 200", got)
	}
	var lastOK time.Time
	p.set(func(p *oidcProvider) { p.down, lastOK = true, p.lastOK })
	if time.Since(lastOK) < maxStale-time.Second { // else the machine stalled: the bound is checked below anyway
		if got := bearerStatus(a, tok); got != 200 {
			t.Fatalf("provider down %s after the last fetch: %d, want 200 (stale keys served)", time.Since(lastOK), got)
		}
	}
	time.Sleep(time.Until(lastOK.Add(maxStale + 200*time.Millisecond)))
	if got := bearerStatus(a, tok); got != 401 {
		t.Fatalf("provider down past max_stale: %d, want 401", got)
	}
	if s := a.KeyStats(); !s.Stale || s.FetchErrors == 0 {
		t.Fatalf("stats %+v, want stale with fetch errors", s)
	}
	p.set(func(p *oidcProvider) { p.down = false })
	deadline := time.Now().Add(10 * time.Second)
	for bearerStatus(a, tok) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("provider back, tokens still refused after 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRemoteKeysConfig(t *testing.T) {
	for _, c := range []struct{ name, jwt string }{
		{"two sources", "{jwks_file: k.json, jwks_url: https://idp/keys, issuer: i, audiences: [a]}"},
		{"no source", "{issuer: i, audiences: [a]}"},
		{"bad url", "{jwks_url: ftp://idp/keys, issuer: i, audiences: [a]}"},
		{"bad interval", "{jwks_url: https://idp/keys, issuer: i, audiences: [a], refresh_interval: 10ms}"},
		{"stale before refresh", "{jwks_url: https://idp/keys, issuer: i, audiences: [a], refresh_interval: 1h, max_stale: 10m}"},
	} {
		if _, err := forwardauth.ParseConfig([]byte("identity: {jwt: " + c.jwt + "}\n")); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	// Discovery whose document names another issuer is refused at startup.
	p := newOIDCProvider(t)
	p.rotate(t, "k1")
	cfg, err := forwardauth.ParseConfig([]byte("identity: {jwt: {discovery: true, issuer: " + p.srv.URL + "/other, audiences: [a]}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := forwardauth.New(cfg, &pdptest.Recorder{}, exampleFacts(t)); err == nil {
		t.Fatal("discovery of another issuer accepted")
	}
}
