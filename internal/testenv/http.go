package testenv

// Clients of the servers under test: whole answers, raw exchanges on one
// connection, and the contract every forward-auth answer keeps.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Answer is an HTTP answer read whole.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Send sends a request with header and body (nil: none) to url and reads
// the answer whole.
func Send(t testing.TB, method, url string, header http.Header, body []byte) Answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if header != nil {
		req.Header = header
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Answer{resp.StatusCode, resp.Header, b}
}

// Forward sends a forward-auth request (no body) with header to url.
func Forward(t testing.TB, method, url string, header map[string]string) Answer {
	t.Helper()
	h := http.Header{}
	for k, v := range header {
		h.Set(k, v)
	}
	return Send(t, method, url, h, nil)
}

// CheckForward checks a forward-auth answer: status, identity headers
// (always present), decision id, challenge and body.
func CheckForward(t testing.TB, a Answer, status int, user, email string) {
	t.Helper()
	if a.Status != status {
		t.Fatalf("status %d %s, want %d", a.Status, a.Body, status)
	}
	for name, want := range map[string]string{"X-Auth-Request-User": user, "X-Auth-Request-Email": email} {
		if vs := a.Header.Values(name); len(vs) != 1 || vs[0] != want {
			t.Fatalf("%s: %q, want exactly %q", name, vs, want)
		}
	}
	if a.Header.Get("X-PDP-Decision-Id") == "" {
		t.Fatal("no X-PDP-Decision-Id")
	}
	if (a.Header.Get("WWW-Authenticate") != "") != (status == 401) {
		t.Fatalf("WWW-Authenticate %q on %d", a.Header.Get("WWW-Authenticate"), status)
	}
	if (len(a.Body) == 0) != (status == 200) {
		t.Fatalf("body %q on %d", a.Body, status)
	}
}

// RawAnswer is one answer read off a raw connection.
type RawAnswer struct {
	Status int
	Header http.Header
	Body   string
}

// Exchange writes raw bytes on a new connection to addr, then reads every
// answer until the server closes the connection or wait passes. closed
// reports whether the server closed it (EOF or reset) rather than the wait
// ending.
func Exchange(t testing.TB, addr, raw string, wait time.Duration) (answers []RawAnswer, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return ReadAnswers(t, c, wait)
}

// ReadAnswers reads answers off c as Exchange does.
func ReadAnswers(t testing.TB, c net.Conn, wait time.Duration) (answers []RawAnswer, closed bool) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			return answers, !(errors.As(err, &ne) && ne.Timeout())
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers = append(answers, RawAnswer{resp.StatusCode, resp.Header, string(body)})
		if err != nil {
			return answers, true
		}
	}
}
