package forwardauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
)

// testKeys are the signing keys of the JWT tests, by kid.
type testKeys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

func newTestKeys(t testing.TB) testKeys {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, dk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{rsa: rk, ec: ek, ed: dk}
}

// writeJWTConfig writes a JWKS with the public keys and a config using it
// into a temporary directory and returns the config path.
// writeJWTConfig writes a config verifying tokens by the keys of k, with
// more settings of the jwt section, one per line.
func writeJWTConfig(t testing.TB, k testKeys, more ...string) string {
	t.Helper()
	dir := t.TempDir()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: k.rsa.Public(), KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
		{Key: k.ec.Public(), KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
		{Key: k.ed.Public(), KeyID: "ed-1", Algorithm: "EdDSA", Use: "sig"},
	}}
	data, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := `routes:
  - {method: GET, path: "/api/v2/infrastructures/{id}", action: read, kind: infrastructure, id: "{id}"}
identity:
  jwt:
    jwks_file: jwks.json
    issuer: https://idp.example.com
    audiences: [pdp, metalsoft-api]
    leeway: 30s
`
	for _, m := range more {
		conf += "    " + m + "\n"
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sign makes a compact JWS of claims with key.
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims ...any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	b := jwt.Signed(s)
	for _, c := range claims {
		b = b.Claims(c)
	}
	tok, err := b.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// handmade builds a compact JWS with any header, signed by mac (or unsigned).
func handmade(t testing.TB, header, claims any, mac func([]byte) []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(claims)
	sig := ""
	if mac != nil {
		sig = base64.RawURLEncoding.EncodeToString(mac([]byte(input)))
	}
	return input + "." + sig
}

func hs256(secret []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}

func TestJWT(t *testing.T) {
	k := newTestKeys(t)
	a, rec := newAuthorizer(t, writeJWTConfig(t, k))
	now := time.Now()
	std := func(mod func(*jwt.Claims)) jwt.Claims {
		c := jwt.Claims{Issuer: "https://idp.example.com", Subject: "u-ops", Audience: jwt.Audience{"metalsoft-api"},
			Expiry: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now)}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	pubDER, err := x509.MarshalPKIXPublicKey(k.rsa.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	rsaJWK, err := json.Marshal(jose.JSONWebKey{Key: k.rsa.Public(), KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	email := struct {
		Email string `json:"email"`
	}{"finance@company.com"}
	type emailClaims struct {
		Email    string `json:"email"`
		Verified bool   `json:"email_verified"`
	}
	unverified := emailClaims{"finance@company.com", false}
	verified := emailClaims{"finance@company.com", true}
	tampered := sign(t, jose.RS256, k.rsa, "rsa-1", std(nil))
	tampered = tampered[:len(tampered)-4] + "AAAA"
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []bearerCase{
		{"RS256", sign(t, jose.RS256, k.rsa, "rsa-1", std(nil)), "u-ops"},
		{"ES256", sign(t, jose.ES256, k.ec, "ec-1", std(nil)), "u-ops"},
		{"EdDSA", sign(t, jose.EdDSA, k.ed, "ed-1", std(nil)), "u-ops"},
		{"second audience", sign(t, jose.RS256, k.rsa, "rsa-1", std(func(c *jwt.Claims) { c.Audience = jwt.Audience{"x", "pdp"} })), "u-ops"},
		{"sub is an email", sign(t, jose.RS256, k.rsa, "rsa-1", std(func(c *jwt.Claims) { c.Subject = "Finance@Company.com" })), ""},
		{"email claim without email_verified", sign(t, jose.ES256, k.ec, "ec-1", std(func(c *jwt.Claims) { c.Subject = "" }), email), ""},
		{"unverified email", sign(t, jose.ES256, k.ec, "ec-1", std(func(c *jwt.Claims) { c.Subject = "idp|42" }), unverified), ""},
		{"verified email", sign(t, jose.ES256, k.ec, "ec-1", std(func(c *jwt.Claims) { c.Subject = "idp|42" }), verified), "u-finance"},
		{"verified email, ASCII case", sign(t, jose.ES256, k.ec, "ec-1", std(func(c *jwt.Claims) { c.Subject = "" }), emailClaims{"FINANCE@Company.COM", true}), "u-finance"},
		{"verified email, dotted capital I", sign(t, jose.ES256, k.ec, "ec-1", std(func(c *jwt.Claims) { c.Subject = "" }), emailClaims{"fİnance@company.com", true}), ""},
		{"verified email, Kelvin sign", sign(t, jose.ES256, k.ec, "ec-1", std(func(c *jwt.Claims) { c.Subject = "" }), emailClaims{"m\u212Atg@company.com", true}), ""},
		{"unknown sub, known email without email_verified", sign(t, jose.ES256, k.ec, "ec-1", std(func(c *jwt.Claims) { c.Subject = "idp|42" }), email), ""},
		{"within leeway", sign(t, jose.RS256, k.rsa, "rsa-1", std(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-10 * time.Second)) })), "u-ops"},
		{"unknown sub", sign(t, jose.RS256, k.rsa, "rsa-1", std(func(c *jwt.Claims) { c.Subject = "u-nobody" })), ""},
		{"no sub or email", sign(t, jose.RS256, k.rsa, "rsa-1", std(func(c *jwt.Claims) { c.Subject = "" })), ""},
		{"expired", sign(t, jose.RS256, k.rsa, "rsa-1", std(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-2 * time.Minute)) })), ""},
		{"no exp", sign(t, jose.RS256, k.rsa, "rsa-1", std(func(c *jwt.Claims) { c.Expiry = nil })), ""},
		{"not yet valid", sign(t, jose.RS256, k.rsa, "rsa-1", std(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(2 * time.Minute)) })), ""},
		{"issued in the future", sign(t, jose.RS256, k.rsa, "rsa-1", std(func(c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(2 * time.Minute)) })), ""},
		{"wrong issuer", sign(t, jose.RS256, k.rsa, "rsa-1", std(func(c *jwt.Claims) { c.Issuer = "https://evil.example.com" })), ""},
		{"wrong audience", sign(t, jose.RS256, k.rsa, "rsa-1", std(func(c *jwt.Claims) { c.Audience = jwt.Audience{"other"} })), ""},
		{"no audience", sign(t, jose.RS256, k.rsa, "rsa-1", std(func(c *jwt.Claims) { c.Audience = nil })), ""},
		{"unknown kid", sign(t, jose.RS256, k.rsa, "rsa-9", std(nil)), ""},
		{"no kid, several keys", sign(t, jose.RS256, k.rsa, "", std(nil)), ""},
		{"signed by another key", sign(t, jose.RS256, otherRSA, "rsa-1", std(nil)), ""},
		{"ES256 token, RSA kid", sign(t, jose.ES256, k.ec, "rsa-1", std(nil)), ""},
		{"RS384 not allowed", sign(t, jose.RS384, k.rsa, "rsa-1", std(nil)), ""},
		{"tampered signature", tampered, ""},
		{"alg none", handmade(t, map[string]string{"alg": "none", "typ": "JWT"}, std(nil), nil), ""},
		{"alg none with kid", handmade(t, map[string]string{"alg": "none", "kid": "rsa-1"}, std(nil), nil), ""},
		{"HS256 with the PEM public key", handmade(t, map[string]string{"alg": "HS256", "kid": "rsa-1"}, std(nil), hs256(pubPEM)), ""},
		{"HS256 with the DER public key", handmade(t, map[string]string{"alg": "HS256", "kid": "rsa-1"}, std(nil), hs256(pubDER)), ""},
		{"HS256 with the JWK", handmade(t, map[string]string{"alg": "HS256", "kid": "rsa-1"}, std(nil), hs256(rsaJWK)), ""},
		{"garbage", "a.b.c", ""},
	}
	checkBearers(t, a, rec, cases)
}

// TestJWTSingleKeyWithoutKid: a set of one key verifies tokens without kid.
func TestJWTSingleKeyWithoutKid(t *testing.T) {
	k := newTestKeys(t)
	dir := t.TempDir()
	data, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.ed.Public(), KeyID: "only"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := "routes: [{method: GET, path: /ui, action: access, kind: ui}]\nidentity: {jwt: {jwks_file: keys.json, issuer: i, audiences: [a]}}\n"
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _ := newAuthorizer(t, path)
	tok := sign(t, jose.EdDSA, k.ed, "", jwt.Claims{Issuer: "i", Audience: jwt.Audience{"a"}, Subject: "u-bi", Expiry: jwt.NewNumericDate(time.Now().Add(time.Minute))})
	res := a.Authorize(context.Background(), forwardauth.Request{Method: "GET", URI: "/v1/authz/envoy/ui", RemoteAddr: loopback, Header: header("Authorization", "Bearer "+tok)})
	checkResult(t, res, 403, "no_permission", "", "")
}

func TestJWKSErrors(t *testing.T) {
	k := newTestKeys(t)
	priv, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.ec, KeyID: "p"}}})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"empty set":   `{"keys": []}`,
		"not json":    `keys`,
		"private key": string(priv),
		"symmetric":   `{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}`,
	}
	for name, jwks := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "keys.json"), []byte(jwks), 0o600); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "c.yaml")
			if err := os.WriteFile(path, []byte("identity: {jwt: {jwks_file: keys.json, issuer: i, audiences: [a]}}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := forwardauth.LoadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := forwardauth.New(cfg, &pdptest.Recorder{}, exampleFacts(t)); err == nil {
				t.Fatal("JWKS accepted")
			}
		})
	}
}

// TestJWTEmailSettings: email_verified_optional and sub_as_email turn on
// the readings that are off by default.
func TestJWTEmailSettings(t *testing.T) {
	k := newTestKeys(t)
	a, rec := newAuthorizer(t, writeJWTConfig(t, k, "email_verified_optional: true", "sub_as_email: true"))
	now := time.Now()
	claims := func(sub string) jwt.Claims {
		return jwt.Claims{Issuer: "https://idp.example.com", Subject: sub, Audience: jwt.Audience{"pdp"},
			Expiry: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now)}
	}
	type emailClaim struct {
		Email    string `json:"email"`
		Verified *bool  `json:"email_verified,omitempty"`
	}
	no := false
	cases := []bearerCase{
		{"sub is an email", sign(t, jose.RS256, k.rsa, "rsa-1", claims("Finance@Company.com")), "u-finance"},
		{"sub is a look-alike email", sign(t, jose.RS256, k.rsa, "rsa-1", claims("fİnance@company.com")), ""},
		{"email without email_verified", sign(t, jose.ES256, k.ec, "ec-1", claims("idp|42"), emailClaim{Email: "finance@company.com"}), "u-finance"},
		{"email_verified false", sign(t, jose.ES256, k.ec, "ec-1", claims("idp|42"), emailClaim{"finance@company.com", &no}), ""},
	}
	checkBearers(t, a, rec, cases)
}

// bearerCase is a bearer token and the user it identifies ("" for none).
type bearerCase struct{ name, token, user string }

// checkBearers asks a for inf-web with each case's token as the bearer: a
// token that identifies no one is a 401 before the engine is asked, one
// that does is its user's allow.
func checkBearers(t *testing.T, a *forwardauth.Authorizer, rec *pdptest.Recorder, cases []bearerCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := a.Authorize(context.Background(), forwardauth.Request{Method: "GET", URI: "/v1/authz/envoy/api/v2/infrastructures/inf-web",
				RemoteAddr: loopback, Header: header("Authorization", "Bearer "+c.token)})
			req := rec.Take()
			if c.user == "" {
				checkResult(t, res, 401, "unknown_principal", "", "")
				if req != nil {
					t.Fatal("engine asked")
				}
				return
			}
			if res.Status != 200 || req == nil || req.Principal.ID != c.user {
				t.Fatalf("got %d %v (%v), want %s allowed", res.Status, res.Decision.Reasons, res.Err, c.user)
			}
		})
	}
}
