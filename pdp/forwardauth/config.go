package forwardauth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
	"go.yaml.in/yaml/v3"
)

// Defaults applied by ParseConfig to settings left empty.
const (
	DefaultAPIKeyHeader   = "X-API-Key"
	DefaultTrustedHeader  = "X-Auth-Request-User"
	DefaultUpstreamUser   = "X-Auth-Request-User"
	DefaultUpstreamEmail  = "X-Auth-Request-Email"
	DefaultRealm          = "pdp"
	DefaultJWTLeeway      = 30 * time.Second
	DecisionIDHeader      = "X-PDP-Decision-Id"
	ReasonsHeader         = "X-PDP-Reasons"
	defaultTrustedProxyV4 = "127.0.0.0/8"
	defaultTrustedProxyV6 = "::1/128"
)

// DefaultJWTAlgorithms are the signature algorithms accepted when a JWT
// section names none. Symmetric algorithms (HS*) and "none" are never
// accepted.
var DefaultJWTAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// Config is the --config file: the route table, identity settings and the
// addresses of trusted proxies for /v1/authz.
type Config struct {
	// Routes map an original method and path to an action and a resource.
	Routes []Route `yaml:"routes"`
	// Identity says how the caller is identified.
	Identity Identity `yaml:"identity"`
	// TrustedProxies are the CIDRs (or single addresses) whose forwarded
	// headers and trusted identity header are believed. Absent: loopback;
	// an empty list ([]) trusts no address (only Envoy's form is read).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ProxyKinds pin proxy addresses to one kind of proxy: from an address
	// in one, only that kind's header family is read and any other family
	// is refused. The most specific matching entry counts. Unpinned
	// addresses may use any family, but two families that disagree are
	// refused.
	ProxyKinds []ProxyKind `yaml:"proxy_kinds"`
	// MethodOverride says what a forwarded request carrying a method
	// override (X-HTTP-Method-Override, X-Method-Override, X-HTTP-Method
	// or a _method query parameter) gets: "refused" (the default, 403
	// invalid_request) or "ignored" (judged by its own method, for upstreams
	// that ignore overrides). A route may say otherwise for itself.
	MethodOverride string `yaml:"method_override"`

	// lines holds the YAML line of each route, for error messages.
	lines []int
	// proxies is TrustedProxies parsed.
	proxies []netip.Prefix
	// overrideIgnored is MethodOverride == "ignored".
	overrideIgnored bool
}

// ProxyKind pins the proxies at Address (a CIDR or a single address) to
// Kind: envoy, traefik, caddy or nginx.
type ProxyKind struct {
	Address string `yaml:"address"`
	Kind    string `yaml:"kind"`

	prefix netip.Prefix
}

// Method override settings (Config.MethodOverride, Route.MethodOverride).
const (
	MethodOverrideRefused = "refused"
	MethodOverrideIgnored = "ignored"
)

// Route is one entry of the route table.
type Route struct {
	// Method is an HTTP method (upper case) or "*" for any. A HEAD request
	// with no HEAD route is matched against the GET routes.
	Method string `yaml:"method"`
	// Path is a template: literal segments and whole-segment parameters
	// "{name}", e.g. "/api/v2/infrastructures/{id}/deploy".
	Path string `yaml:"path"`
	// Action and Kind are from the closed sets of pdp.Actions and pdp.Kinds.
	Action string `yaml:"action"`
	Kind   string `yaml:"kind"`
	// ID is the resource id: a literal, "{param}" or "{query.name}". Empty
	// for requests without a resource id (a list).
	ID string `yaml:"id"`
	// Attr are resource attributes, each value a literal, "{param}" or
	// "{query.name}". An absent query parameter leaves the attribute out.
	Attr map[string]string `yaml:"attr"`
	// MethodOverride overrides Config.MethodOverride for this route:
	// "ignored" when its upstream ignores method override headers and
	// _method, "refused" otherwise; empty keeps the global setting.
	MethodOverride string `yaml:"method_override"`
}

// Identity holds the identity settings.
type Identity struct {
	// APIKeyHeader carries an API key (default X-API-Key). "Authorization:
	// Bearer <key>" is always accepted too.
	APIKeyHeader string `yaml:"api_key_header"`
	// JWT enables bearer JSON Web Tokens when set.
	JWT *JWT `yaml:"jwt"`
	// TrustedHeader is set by an authenticating proxy in front (default
	// X-Auth-Request-User): a user id or e-mail address, honoured only from
	// a trusted proxy address. DisableTrustedHeader turns it off.
	TrustedHeader        string `yaml:"trusted_header"`
	DisableTrustedHeader bool   `yaml:"disable_trusted_header"`
	// Upstream names the identity headers of an allow answer.
	Upstream UpstreamHeaders `yaml:"upstream_headers"`
	// Realm is the realm of the WWW-Authenticate challenge (default "pdp").
	Realm string `yaml:"realm"`
}

// JWT holds the settings of JSON Web Token verification.
type JWT struct {
	// JWKSFile is a JSON Web Key Set file with the public verification keys.
	// LoadConfig resolves a relative path against the config file's directory.
	JWKSFile string `yaml:"jwks_file"`
	// JWKSURL is an http(s) URL of the key set, kept fresh (jwks.go).
	JWKSURL string `yaml:"jwks_url"`
	// Discovery reads the key set URL from the issuer's OpenID Connect
	// discovery document (<issuer>/.well-known/openid-configuration) at
	// startup. Exactly one of jwks_file, jwks_url and discovery is set.
	Discovery bool `yaml:"discovery"`
	// RefreshInterval, MinRefreshInterval and MaxStale (Go durations) tune
	// a remote key set: fetched every refresh_interval (default 15m), again
	// on an unknown kid at most every min_refresh_interval (default 30s),
	// its last valid fetch served while the provider is down for max_stale
	// (default 1h), after which every token is refused.
	RefreshInterval    string `yaml:"refresh_interval"`
	MinRefreshInterval string `yaml:"min_refresh_interval"`
	MaxStale           string `yaml:"max_stale"`
	// Issuer must equal the "iss" claim. Required.
	Issuer string `yaml:"issuer"`
	// Audiences: the "aud" claim must contain at least one. Required.
	Audiences []string `yaml:"audiences"`
	// Algorithms accepted (default RS256, ES256, EdDSA); asymmetric only.
	Algorithms []string `yaml:"algorithms"`
	// Leeway for "exp", "nbf" and "iat", a Go duration (default 30s).
	Leeway string `yaml:"leeway"`
	// EmailVerifiedOptional counts an "email" claim without an
	// "email_verified" claim as verified. By default only
	// "email_verified": true makes the address name a user.
	EmailVerifiedOptional bool `yaml:"email_verified_optional"`
	// SubjectAsEmail looks up an e-mail-shaped "sub" that is no user's id as
	// an e-mail address. Off by default: nothing says the identity provider
	// verified an address in "sub".
	SubjectAsEmail bool `yaml:"sub_as_email"`

	leeway                        time.Duration
	refresh, minRefresh, maxStale time.Duration
}

// UpstreamHeaders names the headers that carry the identity to the upstream.
type UpstreamHeaders struct {
	User  string `yaml:"user"`  // default X-Auth-Request-User: the effective user id
	Email string `yaml:"email"` // default X-Auth-Request-Email
}

// LoadConfig reads and parses the config file at path. A relative JWKS file
// path is resolved against the directory of path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.Identity.JWT != nil && c.Identity.JWT.JWKSFile != "" && !filepath.IsAbs(c.Identity.JWT.JWKSFile) {
		c.Identity.JWT.JWKSFile = filepath.Join(filepath.Dir(path), c.Identity.JWT.JWKSFile)
	}
	return c, nil
}

// ParseConfig decodes a config file strictly (an unknown field, a wrong type
// or a bad value is an error naming its line), applies the defaults and
// checks every route.
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("config: more than one YAML document")
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.lines = make([]int, len(c.Routes))
	for i := range c.Routes {
		if n := sectionItem(&root, "routes", i); n != nil {
			c.lines[i] = n.Line
		}
	}
	if err := c.setDefaults(sectionLine(&root, "identity"), sectionLine(&root, "trusted_proxies")); err != nil {
		return nil, err
	}
	if err := c.checkProxyKinds(sectionLine(&root, "proxy_kinds")); err != nil {
		return nil, err
	}
	switch c.MethodOverride {
	case "", MethodOverrideRefused:
	case MethodOverrideIgnored:
		c.overrideIgnored = true
	default:
		return nil, fmt.Errorf("config: line %d: method_override %q: want %q or %q", sectionLine(&root, "method_override"), c.MethodOverride, MethodOverrideRefused, MethodOverrideIgnored)
	}
	if _, err := compileRoutes(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// setDefaults fills in defaults and checks the identity and proxy settings.
func (c *Config) setDefaults(identityLine, proxiesLine int) error {
	id := &c.Identity
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&id.APIKeyHeader, DefaultAPIKeyHeader)
	def(&id.TrustedHeader, DefaultTrustedHeader)
	def(&id.Upstream.User, DefaultUpstreamUser)
	def(&id.Upstream.Email, DefaultUpstreamEmail)
	def(&id.Realm, DefaultRealm)
	for _, h := range []string{id.APIKeyHeader, id.TrustedHeader, id.Upstream.User, id.Upstream.Email} {
		if !isToken(h) {
			return fmt.Errorf("config: line %d: identity: %q is not a valid header name", identityLine, h)
		}
	}
	if strings.ContainsAny(id.Realm, "\"\\\r\n") {
		return fmt.Errorf("config: line %d: identity: realm must not contain quotes, backslashes or line breaks", identityLine)
	}
	if j := id.JWT; j != nil {
		if err := j.check(); err != nil {
			return fmt.Errorf("config: line %d: identity.jwt: %w", identityLine, err)
		}
	}
	if c.TrustedProxies == nil {
		c.TrustedProxies = []string{defaultTrustedProxyV4, defaultTrustedProxyV6}
	}
	c.proxies = c.proxies[:0]
	for _, s := range c.TrustedProxies {
		p, err := parsePrefix(s)
		if err != nil {
			return fmt.Errorf("config: line %d: trusted_proxies: %w", proxiesLine, err)
		}
		c.proxies = append(c.proxies, p)
	}
	return nil
}

// check validates the JWT settings and fills in their defaults.
func (j *JWT) check() error {
	sources := 0
	for _, set := range []bool{j.JWKSFile != "", j.JWKSURL != "", j.Discovery} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return errors.New("exactly one of jwks_file, jwks_url and discovery is required")
	}
	if u := j.JWKSURL; u != "" && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return fmt.Errorf("jwks_url %q: want an http(s) URL", u)
	}
	if err := j.checkRefresh(); err != nil {
		return err
	}
	if j.Issuer == "" {
		return errors.New("issuer is required")
	}
	if len(j.Audiences) == 0 {
		return errors.New("audiences are required")
	}
	if len(j.Algorithms) == 0 {
		j.Algorithms = DefaultJWTAlgorithms
	}
	for _, a := range j.Algorithms {
		if !allowedAlgorithm(a) {
			return fmt.Errorf("algorithm %q is not allowed (asymmetric only: RS256/384/512, PS256/384/512, ES256/384/512, EdDSA)", a)
		}
	}
	j.leeway = DefaultJWTLeeway
	if j.Leeway != "" {
		d, err := time.ParseDuration(j.Leeway)
		if err != nil || d < 0 || d > 5*time.Minute {
			return fmt.Errorf("leeway %q: want a duration from 0s to 5m", j.Leeway)
		}
		j.leeway = d
	}
	return nil
}

// parsePrefix parses a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q: %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: %w", s, err)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// trusted reports whether addr is a trusted proxy.
func (c *Config) trusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range c.proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// checkProxyKinds parses the addresses and checks the kinds of ProxyKinds.
func (c *Config) checkProxyKinds(line int) error {
	for i := range c.ProxyKinds {
		pk := &c.ProxyKinds[i]
		if _, ok := familyOf[pk.Kind]; !ok {
			return fmt.Errorf("config: line %d: proxy_kinds[%d]: kind %q: want envoy, traefik, caddy or nginx", line, i, pk.Kind)
		}
		p, err := parsePrefix(pk.Address)
		if err != nil {
			return fmt.Errorf("config: line %d: proxy_kinds[%d]: address: %w", line, i, err)
		}
		pk.prefix = p
	}
	return nil
}

// pinned returns the kind addr is pinned to by the most specific entry of
// ProxyKinds that holds it.
func (c *Config) pinned(addr netip.Addr) (string, bool) {
	addr = addr.Unmap()
	best := -1
	kind := ""
	for _, pk := range c.ProxyKinds {
		if pk.prefix.Contains(addr) && pk.prefix.Bits() > best {
			best, kind = pk.prefix.Bits(), pk.Kind
		}
	}
	return kind, best >= 0
}

// routeLine is the YAML line of route i, 0 when unknown.
func (c *Config) routeLine(i int) int {
	if i < len(c.lines) {
		return c.lines[i]
	}
	return 0
}

// isToken reports whether s is a non-empty HTTP token (a header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// sectionItem finds root[section][i] in a parsed YAML document.
func sectionItem(root *yaml.Node, section string, i int) *yaml.Node {
	seq := sectionValue(root, section)
	if seq != nil && seq.Kind == yaml.SequenceNode && i < len(seq.Content) {
		return seq.Content[i]
	}
	return nil
}

// sectionLine is the line of root[section], 0 when absent.
func sectionLine(root *yaml.Node, section string) int {
	if n := sectionValue(root, section); n != nil {
		return n.Line
	}
	return 0
}

// sectionValue finds root[section] in a parsed YAML document.
func sectionValue(root *yaml.Node, section string) *yaml.Node {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == section {
			return m.Content[j+1]
		}
	}
	return nil
}

// checkVocabulary reports an action or kind outside the closed sets.
func checkVocabulary(action, kind string) error {
	if !pdp.IsAction(action) {
		return fmt.Errorf("unknown action %q", action)
	}
	if !pdp.IsKind(kind) {
		return fmt.Errorf("unknown kind %q", kind)
	}
	return nil
}
