package forwardauth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
)

// Forms of a forward-auth request, chosen by FuzzForwardForms' form byte.
const (
	formEnvoy = iota
	formTraefik
	formNginxURI
	formNginxURL
	formCount
)

// forwardRequest builds a forward-auth request of one form.
func forwardRequest(form byte, trusted bool, method, uri, key string) forwardauth.Request {
	r := forwardauth.Request{Method: "GET", URI: "/v1/authz", RemoteAddr: outsider}
	if trusted {
		r.RemoteAddr = loopback
	}
	kv := []string{"X-API-Key", key}
	switch form % formCount {
	case formEnvoy:
		r.Method, r.URI = method, forwardauth.EnvoyPrefix+uri
	case formTraefik:
		kv = append(kv, "X-Forwarded-Method", method, "X-Forwarded-Uri", uri)
	case formNginxURI:
		kv = append(kv, "X-Original-Method", method, "X-Original-URI", uri)
	case formNginxURL:
		kv = append(kv, "X-Original-Method", method, "X-Original-URL", "https://api.example.com"+uri)
	}
	r.Header = header(kv...)
	return r
}

// FuzzForwardForms: whatever a client sends in any of the forms (Envoy's
// path, Traefik's and nginx's headers), from a trusted proxy or not, the
// answer is 200, 401 or 403; 200 only for a request the engine allowed;
// forwarded headers from an untrusted address never reach the engine; the
// resource id the engine sees is never a dot segment nor holds a separator;
// the same request always gets the same answer.
func FuzzForwardForms(f *testing.F) {
	a, rec := newAuthorizer(f, "testdata/config.yaml")
	for _, c := range pdptest.RouteCases(f) {
		for form := range byte(formCount) {
			f.Add(form, true, c.Method, c.URI, "ops-demo-key")
		}
	}
	f.Add(byte(formTraefik), false, "GET", "/api/v2/infrastructures/inf-web", "ops-demo-key")
	f.Add(byte(formEnvoy), false, "DELETE", "/api/v2/users/u-bi/../u-ops", "root-demo-key")
	f.Fuzz(func(t *testing.T, form byte, trusted bool, method, uri, key string) {
		r := forwardRequest(form, trusted, method, uri, key)
		res := a.Authorize(context.Background(), r)
		req := rec.Take()
		again := a.Authorize(context.Background(), r)
		rec.Take()
		switch {
		case res.Status != 200 && res.Status != 401 && res.Status != 403:
			t.Fatalf("status %d", res.Status)
		case res.Status == 200 && (req == nil || !res.Decision.Allow):
			t.Fatalf("allowed without the engine: %+v", res)
		case !trusted && form%formCount != formEnvoy && req != nil:
			t.Fatalf("forwarded headers from an untrusted address reached the engine: %+v", req)
		case again.Status != res.Status || !slices.Equal(again.Decision.Reasons, res.Decision.Reasons):
			t.Fatalf("not deterministic: %d %v / %d %v", res.Status, res.Decision.Reasons, again.Status, again.Decision.Reasons)
		}
		if req != nil {
			if id := req.Resource.ID; id == "." || id == ".." || strings.ContainsAny(id, "/\\;%\x00") {
				t.Fatalf("resource id %q reached the engine from %q", id, uri)
			}
		}
	})
}

// FuzzJWT: a bearer token identifies someone only with claims one of the
// configured keys signed. The seeds are tokens signed by the test keys
// (valid and not: expired, wrong audience, unknown kid, ...) and forged
// ones (alg none, HS256 with the public key); a token the fuzzer derives
// from them may only be accepted if its decoded claims are exactly those of
// a validly signed seed.
func FuzzJWT(f *testing.F) {
	k := newTestKeys(f)
	a, rec := newAuthorizer(f, writeJWTConfig(f, k))
	now := time.Now()
	claims := func(sub string, mod func(*jwt.Claims)) jwt.Claims {
		c := jwt.Claims{Issuer: "https://idp.example.com", Subject: sub, Audience: jwt.Audience{"pdp"},
			Expiry: jwt.NewNumericDate(now.Add(24 * time.Hour)), IssuedAt: jwt.NewNumericDate(now)}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	var signed [][]byte // decoded claims of the validly signed seeds
	valid := func(tok string) string {
		parts := strings.Split(tok, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			f.Fatal(err)
		}
		signed = append(signed, payload)
		return tok
	}
	for _, tok := range []string{
		valid(sign(f, jose.RS256, k.rsa, "rsa-1", claims("u-ops", nil))),
		valid(sign(f, jose.ES256, k.ec, "ec-1", claims("u-root", nil))),
		valid(sign(f, jose.EdDSA, k.ed, "ed-1", claims("finance@company.com", nil))),
		valid(sign(f, jose.RS256, k.rsa, "rsa-1", claims("u-bi", func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Hour)) }))),
		valid(sign(f, jose.ES256, k.ec, "ec-1", claims("u-root", func(c *jwt.Claims) { c.Audience = jwt.Audience{"other"} }))),
		sign(f, jose.ES256, k.ec, "rsa-1", claims("u-root", nil)),
		handmade(f, map[string]string{"alg": "none", "kid": "rsa-1"}, claims("u-root", nil), nil),
		handmade(f, map[string]string{"alg": "HS256", "kid": "rsa-1"}, claims("u-root", nil), hs256([]byte("secret"))),
		"a.b.c", "..", "ops-demo-key",
	} {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, token string) {
		r := forwardauth.Request{Method: "DELETE", URI: forwardauth.EnvoyPrefix + "/api/v2/infrastructures/inf-web",
			RemoteAddr: loopback, Header: header("Authorization", "Bearer "+token)}
		res := a.Authorize(context.Background(), r)
		req := rec.Take()
		again := a.Authorize(context.Background(), r)
		rec.Take()
		if res.Status != 200 && res.Status != 401 && res.Status != 403 {
			t.Fatalf("status %d", res.Status)
		}
		if again.Status != res.Status || !slices.Equal(again.Decision.Reasons, res.Decision.Reasons) {
			t.Fatalf("not deterministic: %d %v / %d %v", res.Status, res.Decision.Reasons, again.Status, again.Decision.Reasons)
		}
		if req == nil || strings.Count(token, ".") != 2 {
			return // not identified, or an API key
		}
		parts := strings.Split(strings.TrimSpace(token), ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil || !slices.ContainsFunc(signed, func(p []byte) bool { return bytes.Equal(p, payload) }) {
			t.Fatalf("token %q identified %s with claims no key signed (%v)", token, req.Principal.ID, err)
		}
	})
}
