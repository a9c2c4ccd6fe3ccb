// Command bare is the physical limit of the benchmark machine: a fasthttp
// server that answers every request with a constant decision body, doing no
// work. pdp's throughput is reported as a fraction of this server's.
package main

import (
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

var body = []byte(`{"allow":true,"reasons":["owner"],"decision_id":"00000000000000000000000000000000","revision":"bare"}`)

func main() {
	addr := flag.String("addr", "127.0.0.1:8180", "listen address")
	flag.Parse()
	handler := func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}
	log.Fatal(fasthttp.ListenAndServe(*addr, handler))
}
