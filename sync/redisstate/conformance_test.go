package redisstate

import (
	"context"
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
)

// TestConformance runs the decision point's conformance suite with every
// suite's state imported into Redis and read through a Source.
func TestConformance(t *testing.T) {
	srv := testenv.StartRedis(t)
	client := srv.Client()
	w := openWriter(t, srv.URL(), "")
	pdptest.Run(t, func(t *testing.T, s pdptest.Suite) pdp.Facts {
		if err := client.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		importState(t, w, s.State)
		return openSource(t, srv.URL(), Options{})
	})
}
