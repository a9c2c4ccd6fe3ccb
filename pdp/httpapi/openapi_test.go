package httpapi

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIDocumentsEveryRoute: every endpoint of both ports, with each
// of its methods, is in docs/openapi.yaml.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	data, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	s := &Server{}
	routes := append(s.decisionRoutes(), s.adminRoutes()...)
	for _, rt := range routes {
		paths := []string{rt.path}
		if rt.prefix {
			paths = append(paths, rt.path+"/{path}")
		}
		methods := rt.methods
		if methods == nil {
			methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions}
		}
		for _, p := range paths {
			item, ok := doc.Paths[p]
			if !ok {
				t.Errorf("%s is not documented", p)
				continue
			}
			for _, m := range methods {
				op, ok := item[strings.ToLower(m)].(map[string]any)
				if m == http.MethodHead && !ok {
					continue // HEAD of a GET endpoint
				}
				if !ok || op["responses"] == nil {
					t.Errorf("%s %s is not documented", m, p)
				}
			}
		}
	}
}
