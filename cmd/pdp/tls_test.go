package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pdp test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate for 127.0.0.1 (a server) or a client, with
// serial, as PEM certificate and key.
func (ca *testCA) issue(t *testing.T, serial int64, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "pdp test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	if client {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

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
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c, k := ca.issue(t, 100, false)
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	p := startPDP(t, nil, "--state", filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"),
		"--tls-cert-file", certFile, "--tls-key-file", keyFile)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	client := &tls.Config{RootCAs: roots}
	status, serial, err := httpsCheck(p, client)
	if err != nil || status != 200 || serial != 100 {
		t.Fatalf("HTTPS check: status %d, certificate %d, %v", status, serial, err)
	}
	if _, err := http.Post(p.Decision+"/v1/check", "application/json", strings.NewReader("{}")); err == nil {
		t.Error("plain HTTP answered on the TLS decision port")
	}

	c, k = ca.issue(t, 200, false)
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
	ca, other := newTestCA(t), newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	c, k := ca.issue(t, 100, false)
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	writeFile(t, caFile, ca.pem)
	p := startPDP(t, nil, "--state", filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"),
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-client-ca-file", caFile)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	clientCert := func(ca *testCA) []tls.Certificate {
		c, k := ca.issue(t, 300, true)
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
