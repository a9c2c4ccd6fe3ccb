package pdp_test

import (
	"testing"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// TestConformance runs the conformance suite over the YAML state file source.
func TestConformance(t *testing.T) {
	pdptest.Run(t, func(_ *testing.T, s pdptest.Suite) pdp.Facts {
		return statefile.NewFacts(s.State, "test")
	})
}
