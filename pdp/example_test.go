package pdp_test

import (
	"context"
	"fmt"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// An engine over the seed scenario: the ops user, an account delegate of the
// billable finance user, deploys one of finance's infrastructures; the
// marketing user, delegated only the web infrastructure, may not touch ERP.
func ExampleEngine_Decide() {
	state, err := statefile.ParseFile(testenv.RepoRoot() + "/examples/metalcloud.yaml")
	if err != nil {
		panic(err)
	}
	engine, err := pdp.NewEngine(statefile.NewFacts(state, "example"))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	d := engine.Decide(ctx, &pdp.Request{
		Principal: pdp.Principal{Email: "ops@company.com"},
		Action:    "deploy",
		Resource: pdp.ResourceRef{Kind: "infrastructure", ID: "inf-erp", Attr: map[string]any{
			"deploy_type": "edit", "requested": map[string]any{"servers": 2},
		}},
	})
	fmt.Println(d.Allow, d.Reasons, d.Revision)

	d = engine.Decide(ctx, &pdp.Request{
		Principal: pdp.Principal{ID: "u-mktg"},
		Action:    "update",
		Resource:  pdp.ResourceRef{Kind: "infrastructure", ID: "inf-erp"},
	})
	fmt.Println(d.Allow, d.Reasons)

	d = engine.DecideExplain(ctx, &pdp.Request{
		Principal: pdp.Principal{ID: "u-ops"},
		ActingAs:  "u-finance",
		Action:    "pay",
		Resource:  pdp.ResourceRef{Kind: "billing", ID: "u-finance"},
	})
	fmt.Println(d.Allow, d.Reasons, d.Explain["effective_principal"], d.Explain["step"])
	// Output:
	// true [account_delegate] example
	// false [no_permission]
	// true [impersonation self] u-finance grants
}
