package forwardauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Defaults of the remote key set settings (identity.jwt jwks_url or
// discovery).
const (
	DefaultJWKSRefresh    = 15 * time.Minute // scheduled refresh
	DefaultJWKSMinRefresh = 30 * time.Second // refreshes on an unknown kid at most this often
	DefaultJWKSMaxStale   = time.Hour        // keys not refreshed for longer: every token refused
	jwksFetchTimeout      = 10 * time.Second
	jwksMaxBody           = 1 << 20
)

// KeyStats are the counters of a remote key set, for metrics.
type KeyStats struct {
	Remote      bool      // a remote key set is configured
	Fetches     uint64    // fetches that returned a valid key set
	FetchErrors uint64    // fetches that failed (network, status, body)
	LastFetch   time.Time // of the last valid key set; zero before the first
	Stale       bool      // older than max_stale: tokens are refused
}

// keySource gives the keys a token's kid may name.
type keySource interface {
	keys(ctx context.Context, kid string) (jose.JSONWebKeySet, error)
}

// fileKeys is a key set read once from jwks_file.
type fileKeys jose.JSONWebKeySet

func (f fileKeys) keys(context.Context, string) (jose.JSONWebKeySet, error) {
	return jose.JSONWebKeySet(f), nil
}

// remoteKeys is a JWKS URL kept by jwx's cache: fetched on a schedule, and
// again when a token names a kid the set lacks (at most every minRefresh);
// the last valid set is served while the provider is down, for maxStale.
type remoteKeys struct {
	url        string
	cache      *jwk.Cache
	minRefresh time.Duration
	maxStale   time.Duration
	now        func() time.Time

	fetches, fetchErrors atomic.Uint64
	lastOK               atomic.Int64 // unix nanoseconds of the last valid fetch

	mu        sync.Mutex
	lastForce time.Time
	set       jwk.Set            // the set last converted
	converted jose.JSONWebKeySet // set, as go-jose keys
}

// newRemoteKeys starts the cache of url. Its first fetch happens in the
// background: until it succeeds, tokens are refused.
func newRemoteKeys(url string, j *JWT) (*remoteKeys, error) {
	r := &remoteKeys{url: url, minRefresh: j.minRefresh, maxStale: j.maxStale, now: time.Now}
	cache, err := jwk.NewCache(context.Background(), httprc.NewClient())
	if err != nil {
		return nil, fmt.Errorf("JWKS cache: %w", err)
	}
	client := &recordingClient{keys: r, client: &http.Client{Timeout: jwksFetchTimeout}}
	if err := cache.Register(context.Background(), url, jwk.WithHTTPClient(client),
		jwk.WithConstantInterval(j.refresh), jwk.WithWaitReady(false)); err != nil {
		cache.Shutdown(context.Background())
		return nil, fmt.Errorf("JWKS %s: %w", url, err)
	}
	r.cache = cache
	return r, nil
}

// keys returns the current set. Before the first fetch, for a kid the set
// lacks, and once stale, it fetches first, unless it forced a fetch less
// than minRefresh ago. A set not refreshed for maxStale is refused.
func (r *remoteKeys) keys(ctx context.Context, kid string) (jose.JSONWebKeySet, error) {
	ks, err := r.current(ctx)
	if err == nil && (kid == "" || len(ks.Key(kid)) > 0) && r.fresh() == nil {
		return ks, nil
	}
	// Not fetched yet, an unknown kid, or stale: fetch now, rate-limited.
	if r.mayForce() {
		rctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
		_, _ = r.cache.Refresh(rctx, r.url) // a failure is counted by the client
		cancel()
		ks, err = r.current(ctx)
	}
	if err != nil {
		return ks, err
	}
	return ks, r.fresh()
}

// fresh fails when the last valid fetch is older than maxStale.
func (r *remoteKeys) fresh() error {
	last := r.lastOK.Load()
	if last == 0 {
		return errors.New("no keys fetched yet from " + r.url)
	}
	if age := r.now().Sub(time.Unix(0, last)); age > r.maxStale {
		return fmt.Errorf("keys from %s are %s old, over max_stale %s", r.url, age.Round(time.Second), r.maxStale)
	}
	return nil
}

// mayForce reports whether an unknown kid may refresh now, and if so
// records that it does.
func (r *remoteKeys) mayForce() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); r.lastForce.IsZero() || now.Sub(r.lastForce) >= r.minRefresh {
		r.lastForce = now
		return true
	}
	return false
}

// current is the cached set as go-jose keys, converted once per fetch.
func (r *remoteKeys) current(ctx context.Context) (jose.JSONWebKeySet, error) {
	set, err := r.cache.Lookup(ctx, r.url)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("no keys from %s: %w", r.url, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if set == r.set {
		return r.converted, nil
	}
	ks, err := toJose(set)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	r.set, r.converted = set, ks
	return ks, nil
}

// toJose converts a jwx key set into go-jose's form, public keys only.
func toJose(set jwk.Set) (jose.JSONWebKeySet, error) {
	var ks jose.JSONWebKeySet
	data, err := json.Marshal(set)
	if err == nil {
		err = json.Unmarshal(data, &ks)
	}
	if err != nil {
		return ks, fmt.Errorf("JWKS: %w", err)
	}
	out := ks.Keys[:0]
	for _, k := range ks.Keys {
		if k.Valid() && k.IsPublic() {
			out = append(out, k)
		}
	}
	ks.Keys = out
	return ks, nil
}

// stats reads the counters.
func (r *remoteKeys) stats() KeyStats {
	s := KeyStats{Remote: true, Fetches: r.fetches.Load(), FetchErrors: r.fetchErrors.Load()}
	if last := r.lastOK.Load(); last != 0 {
		s.LastFetch = time.Unix(0, last)
	}
	s.Stale = r.fresh() != nil
	return s
}

func (r *remoteKeys) close() { _ = r.cache.Shutdown(context.Background()) }

// recordingClient fetches for the cache and records which fetches returned
// a valid key set: the clock of max_stale starts at the last of them.
type recordingClient struct {
	keys   *remoteKeys
	client *http.Client
}

// Do implements httprc.HTTPClient.
func (c *recordingClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.client.Do(req)
	if err != nil {
		c.keys.fetchErrors.Add(1)
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBody+1))
	resp.Body.Close()
	switch {
	case err != nil:
	case resp.StatusCode != http.StatusOK:
		err = fmt.Errorf("status %s", resp.Status)
	case len(body) > jwksMaxBody:
		err = errors.New("key set over 1 MiB")
	default:
		var set jwk.Set
		if set, err = jwk.Parse(body); err == nil && set.Len() == 0 {
			err = errors.New("no keys")
		}
	}
	if err != nil {
		c.keys.fetchErrors.Add(1)
		// The cache keeps the last valid set when a fetch fails.
		return nil, fmt.Errorf("JWKS %s: %w", req.URL, err)
	}
	c.keys.fetches.Add(1)
	c.keys.lastOK.Store(c.keys.now().UnixNano())
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// discover reads the jwks_uri of issuer's OpenID Connect discovery
// document, whose issuer must be issuer exactly.
func discover(ctx context.Context, issuer string) (string, error) {
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discovery %s: status %s", u, resp.Status)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, jwksMaxBody)).Decode(&doc); err != nil {
		return "", fmt.Errorf("discovery %s: %w", u, err)
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("discovery %s: issuer %q, want %q", u, doc.Issuer, issuer)
	}
	if !strings.HasPrefix(doc.JWKSURI, "https://") && !strings.HasPrefix(doc.JWKSURI, "http://") {
		return "", fmt.Errorf("discovery %s: jwks_uri %q is not an http(s) URL", u, doc.JWKSURI)
	}
	return doc.JWKSURI, nil
}

// KeyStats returns the counters of the remote key set; Remote is false
// without one.
func (a *Authorizer) KeyStats() KeyStats {
	if a.jwt == nil {
		return KeyStats{}
	}
	if r, ok := a.jwt.source.(*remoteKeys); ok {
		return r.stats()
	}
	return KeyStats{}
}

// Close stops the refreshes of a remote key set.
func (a *Authorizer) Close() {
	if a.jwt == nil {
		return
	}
	if r, ok := a.jwt.source.(*remoteKeys); ok {
		r.close()
	}
}

// keySourceOf is the key source j configures: jwks_file, jwks_url or the
// issuer's discovery document.
func keySourceOf(j *JWT) (keySource, error) {
	if j.JWKSFile != "" {
		return readKeyFile(j.JWKSFile)
	}
	url := j.JWKSURL
	if j.Discovery {
		var err error
		if url, err = discover(context.Background(), j.Issuer); err != nil {
			return nil, err
		}
	}
	return newRemoteKeys(url, j)
}

// readKeyFile reads a JWKS file of valid public keys.
func readKeyFile(path string) (fileKeys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return fileKeys{}, fmt.Errorf("reading JWKS: %w", err)
	}
	var ks jose.JSONWebKeySet
	if err := json.Unmarshal(data, &ks); err != nil {
		return fileKeys{}, fmt.Errorf("JWKS %s: %w", path, err)
	}
	if len(ks.Keys) == 0 {
		return fileKeys{}, fmt.Errorf("JWKS %s: no keys", path)
	}
	for i, k := range ks.Keys {
		if !k.Valid() || !k.IsPublic() {
			return fileKeys{}, fmt.Errorf("JWKS %s: key %d (kid %q): want a valid public key", path, i, k.KeyID)
		}
	}
	return fileKeys(ks), nil
}

// checkRefresh parses the remote key set durations, filling in defaults.
func (j *JWT) checkRefresh() error {
	for _, d := range []struct {
		name string
		text string
		def  time.Duration
		dst  *time.Duration
	}{
		{"refresh_interval", j.RefreshInterval, DefaultJWKSRefresh, &j.refresh},
		{"min_refresh_interval", j.MinRefreshInterval, DefaultJWKSMinRefresh, &j.minRefresh},
		{"max_stale", j.MaxStale, DefaultJWKSMaxStale, &j.maxStale},
	} {
		*d.dst = d.def
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil || v < time.Second {
			return fmt.Errorf("%s %q: want a duration of 1s or more", d.name, d.text)
		}
		*d.dst = v
	}
	if j.maxStale < j.refresh {
		return fmt.Errorf("max_stale %s is shorter than refresh_interval %s: keys would go stale between refreshes", j.maxStale, j.refresh)
	}
	return nil
}
