package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
)

// checkTimeout bounds one check request.
const checkTimeout = 10 * time.Second

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// check asks a running pdp for a decision: exit 0 allowed, 1 denied.
func (c *cli) check(ctx context.Context, args []string) error {
	fs := c.flags("check")
	pdpURL := fs.String("pdp", "http://127.0.0.1:8181", "`URL` of the pdp's decision port")
	actingAs := fs.String("acting-as", "", "impersonation target `USER`")
	explain := fs.Bool("explain", false, "ask for the facts and the rule that decided")
	expectDeny := fs.Bool("expect-deny", false, "exit 0 when denied, 1 when allowed: a smoke test that pdp answers and denies (helm test)")
	caCert := fs.String("cacert", "", "verify an https --pdp against the CA certificates in PEM `FILE` (default: the system's)")
	clientCert := fs.String("cert", "", "client certificate in PEM `FILE`, for a pdp that requires one (--tls-client-ca-file)")
	clientKey := fs.String("key", "", "private key in PEM `FILE` of --cert")
	var attrs, fields listFlag
	fs.Var(&attrs, "attr", "resource attribute `k=v` (repeatable)")
	fs.Var(&fields, "field", "object `FIELD` the request updates (repeatable)")
	pos, err := c.parse(fs, args, 3, 3)
	if err != nil {
		return err
	}
	req, err := buildRequest(pos[0], pos[1], pos[2], attrs, fields, *actingAs)
	if err != nil {
		return err
	}
	client, err := httpClient(*caCert, *clientCert, *clientKey)
	if err != nil {
		return err
	}
	d, err := postCheck(ctx, client, *pdpURL, req, *explain)
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, string(out))
	if d.Allow == *expectDeny {
		return errDenied // exit 1: not the answer asked for
	}
	return nil
}

// httpClient is the client of check: the system's roots or those of
// caFile, and a client certificate when certFile and keyFile are given.
func httpClient(caFile, certFile, keyFile string) (*http.Client, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return http.DefaultClient, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, usagef("check: --cacert: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, usagef("check: --cacert %s: no PEM certificate in it", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, usagef("check: --cert and --key go together")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, usagef("check: --cert, --key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment}}, nil
}

// buildRequest turns check's arguments into a request.
func buildRequest(principal, action, resource string, attrs, fields []string, actingAs string) (*pdp.Request, error) {
	req := &pdp.Request{Action: action, ActingAs: actingAs, Fields: fields}
	switch kind, v, _ := strings.Cut(principal, ":"); {
	case principal == "":
		return nil, usagef("check: empty principal")
	case kind == "key" || kind == "apikey":
		req.Principal.APIKey = v
	case kind == "id":
		req.Principal.ID = v
	case kind == "email":
		req.Principal.Email = v
	case strings.Contains(principal, "@"):
		req.Principal.Email = principal
	default:
		req.Principal.ID = principal
	}
	kind, id, _ := strings.Cut(resource, "/")
	if kind == "" {
		return nil, usagef("check: resource %q: want KIND or KIND/ID", resource)
	}
	req.Resource = pdp.ResourceRef{Kind: kind, ID: id}
	for _, a := range attrs {
		if err := setAttr(&req.Resource.Attr, a); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// setAttr sets one name=value attribute; a dotted name builds nested
// objects and a value that parses as JSON is taken as JSON.
func setAttr(attr *map[string]any, kv string) error {
	name, raw, ok := strings.Cut(kv, "=")
	if !ok || name == "" {
		return usagef("check: --attr %q: want name=value", kv)
	}
	var val any = raw
	var parsed any
	d := json.NewDecoder(strings.NewReader(raw))
	d.UseNumber()
	if d.Decode(&parsed) == nil {
		if _, err := d.Token(); errors.Is(err, io.EOF) {
			val = parsed
		}
	}
	if *attr == nil {
		*attr = map[string]any{}
	}
	m := *attr
	parts := strings.Split(name, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			if _, taken := m[p]; taken {
				return usagef("check: --attr %q: %q is not an object", kv, p)
			}
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = val
	return nil
}

// apiError is the error body of the pdp's HTTP API.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// postCheck sends POST /v1/check and decodes the decision. A 4xx answer is
// a usage error, anything else that is not a decision an unavailability.
func postCheck(ctx context.Context, client *http.Client, base string, req *pdp.Request, explain bool) (*pdp.Decision, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	url := strings.TrimRight(base, "/") + "/v1/check"
	if explain {
		url += "?explain=true"
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, usagef("check: --pdp %q: %w", base, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("check: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(b))
		var ae apiError
		if json.Unmarshal(b, &ae) == nil && ae.Error.Message != "" {
			msg = ae.Error.Code + ": " + ae.Error.Message
		}
		err := fmt.Errorf("check: the pdp answered %s: %s", resp.Status, msg)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return nil, usageError{err}
		}
		return nil, err
	}
	var d pdp.Decision
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("check: the pdp's answer is not a decision: %w", err)
	}
	return &d, nil
}
