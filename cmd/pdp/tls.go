package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// TLS on the decision port (--tls-cert-file, --tls-key-file, and
// --tls-client-ca-file to require client certificates), for deployments
// where pdp is a shared service rather than a sidecar on loopback.

// certReloader serves the certificate in certFile and keyFile, reloading
// them when either file changes: each handshake compares the files'
// modification times and sizes with those of the pair in use. A pair that
// fails to load (a half-written renewal, a key that does not match) is
// logged and the previous one kept until the files change again.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu    sync.Mutex
	cert  *tls.Certificate
	stamp [2]fileStamp // of certFile and keyFile, for cert
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// newCertReloader loads the pair once: a bad pair at startup is an error.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// reload loads the pair if the files changed since the pair in use was
// loaded. The caller holds mu, or r is not shared yet.
func (r *certReloader) reload() error {
	var stamp [2]fileStamp
	var err error
	for i, path := range []string{r.certFile, r.keyFile} {
		if stamp[i], err = stampOf(path); err != nil {
			return err
		}
	}
	if r.cert != nil && stamp == r.stamp {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s, key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &cert, stamp
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cert
	if err := r.reload(); err != nil {
		r.log.Warn("TLS certificate not reloaded; serving the previous one", "error", err.Error())
	} else if r.cert != old {
		r.log.Info("TLS certificate reloaded", "cert_file", r.certFile)
	}
	return r.cert, nil
}

// tlsConfig is the decision port's TLS configuration from the flags, or
// nil without --tls-cert-file.
func tlsConfig(c *config, log *slog.Logger) (*tls.Config, error) {
	if c.tlsCertFile == "" {
		return nil, nil
	}
	certs, err := newCertReloader(c.tlsCertFile, c.tlsKeyFile, log)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.getCertificate}
	if c.tlsClientCAFile != "" {
		pem, err := os.ReadFile(c.tlsClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("TLS client CA: " + c.tlsClientCAFile + " holds no PEM certificate")
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
