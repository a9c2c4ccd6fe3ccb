package e2e_test

import (
	"testing"

	"github.com/metalsoft-io/pdp/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
