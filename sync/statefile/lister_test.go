package statefile

import (
	"context"
	"slices"
	"testing"
)

func TestInfrastructureIDs(t *testing.T) {
	s, err := ParseFile("../../examples/metalcloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := NewFacts(s, "r").InfrastructureIDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"inf-erp", "inf-hadoop", "inf-web"}; !slices.Equal(ids, want) {
		t.Fatalf("ids %q, want %q", ids, want)
	}
}
