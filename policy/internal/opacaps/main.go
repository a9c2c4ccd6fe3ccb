// Command opacaps writes to standard output the OPA capabilities of the
// policy: this OPA version's built-ins plus the Go built-ins of package
// policy/conditions. `make policy-check` passes it to `opa check
// --capabilities`, so the OPA command line type-checks the calls to them.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/metalsoft-io/pdp/policy/conditions"
)

func main() {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(conditions.Capabilities()); err != nil {
		fmt.Fprintln(os.Stderr, "opacaps:", err)
		os.Exit(1)
	}
}
