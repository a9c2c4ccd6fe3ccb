package conditions_test

import (
	"fmt"

	"github.com/metalsoft-io/pdp/policy/conditions"
)

func ExampleCompile() {
	m, err := conditions.Compile(map[string]any{
		"status": map[string]any{"$in": []any{"deployed", "active"}},
		"owner":  "${principal.id}",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	principal := map[string]any{"id": "u-finance"}
	fmt.Println(m.Match(map[string]any{"status": "active", "owner": "u-finance"}, principal))
	fmt.Println(m.Match(map[string]any{"status": "stopped", "owner": "u-finance"}, principal))

	_, err = conditions.Compile(map[string]any{"status": map[string]any{"$bogus": 1}})
	fmt.Println(err)
	// Output:
	// true
	// false
	// conditions: field "status": unknown operator "$bogus"
}
