// Command mockoidc runs github.com/oauth2-proxy/mockoidc, a small OpenID
// Connect provider, for the identity proxy end-to-end test of pdp
// (pdp/httpapi). It lives in its own module so that pdp's go.mod does not
// carry it.
//
// Each login at the authorization endpoint is the next user of -users, in
// order (mockoidc's default user once they are used up). The first line
// written to stdout is the issuer URL, once the provider serves.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/oauth2-proxy/mockoidc"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen `ADDRESS`")
	clientID := flag.String("client-id", "pdp-e2e", "OAuth2 client id")
	clientSecret := flag.String("client-secret", "pdp-e2e-secret", "OAuth2 client secret")
	users := flag.String("users", "", "comma-separated e-mail `ADDRESSES` logged in, one per login, in order")
	flag.Parse()

	m, err := mockoidc.NewServer(nil)
	if err != nil {
		log.Fatal(err)
	}
	m.ClientID, m.ClientSecret = *clientID, *clientSecret
	for i, email := range strings.Split(*users, ",") {
		if email = strings.TrimSpace(email); email != "" {
			name, _, _ := strings.Cut(email, "@")
			m.QueueUser(&mockoidc.MockUser{Subject: fmt.Sprintf("sub-%d-%s", i, name), Email: email,
				EmailVerified: true, PreferredUsername: name})
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Issuer())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	if err := m.Shutdown(); err != nil {
		log.Fatal(err)
	}
}
