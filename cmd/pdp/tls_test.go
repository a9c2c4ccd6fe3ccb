package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testcert"
	"github.com/metalsoft-io/pdp/internal/testenv"
)

// writeFile replaces path's content atomically (as a Kubernetes secret
// volume or a certificate renewer does).
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// httpsCheck asks /v1/check over HTTPS and returns the status and the
// serial number of the server's certificate.
func httpsCheck(p *proc, cfg *tls.Config) (int, int64, error) {
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Post(strings.Replace(p.Decision, "http://", "https://", 1)+"/v1/check", "application/json",
		bytes.NewReader([]byte(`{"principal": {"id": "u-ops"}, "action": "read", "resource": {"kind": "infrastructure", "id": "inf-web"}}`)))
	if err != nil {
		return 0, 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.TLS.PeerCertificates[0].SerialNumber.Int64(), nil
}

// TestTLS: the decision port serves HTTPS with the certificate given,
// serves a replaced certificate without a restart, and keeps the admin
// port on plain HTTP.
func TestTLS(t *testing.T) {
	ca := testcert.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c, k := ca.Issue(t, 100, false)
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	p := startPDP(t, nil, "--state", filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"),
		"--tls-cert-file", certFile, "--tls-key-file", keyFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	client := &tls.Config{RootCAs: roots}
	status, serial, err := httpsCheck(p, client)
	if err != nil || status != 200 || serial != 100 {
		t.Fatalf("HTTPS check: status %d, certificate %d, %v", status, serial, err)
	}
	if _, err := http.Post(p.Decision+"/v1/check", "application/json", strings.NewReader("{}")); err == nil {
		t.Error("plain HTTP answered on the TLS decision port")
	}

	c, k = ca.Issue(t, 200, false)
	writeFile(t, keyFile, k)
	writeFile(t, certFile, c)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		status, serial, err = httpsCheck(p, client)
		if err == nil && status == 200 && serial == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replaced certificate not served: status %d, certificate %d, %v\n%s", status, serial, err, p.Logs)
		}
	}
}

// TestTLSClientCertificates: with --tls-client-ca-file, a client without a
// certificate, or with one from another CA, is refused; one with a
// certificate from the CA is served.
func TestTLSClientCertificates(t *testing.T) {
	ca, other := testcert.NewCA(t), testcert.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	c, k := ca.Issue(t, 100, false)
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	writeFile(t, caFile, ca.PEM)
	p := startPDP(t, nil, "--state", filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"),
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-client-ca-file", caFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	clientCert := func(ca *testcert.CA) []tls.Certificate {
		c, k := ca.Issue(t, 300, true)
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{pair}
	}
	if status, _, err := httpsCheck(p, &tls.Config{RootCAs: roots}); err == nil {
		t.Errorf("a client without a certificate got status %d", status)
	}
	if status, _, err := httpsCheck(p, &tls.Config{RootCAs: roots, Certificates: clientCert(other)}); err == nil {
		t.Errorf("a client with a certificate of another CA got status %d", status)
	}
	if status, _, err := httpsCheck(p, &tls.Config{RootCAs: roots, Certificates: clientCert(ca)}); err != nil || status != 200 {
		t.Errorf("a client with a certificate of the CA: status %d, %v", status, err)
	}
}
