package charts_test

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/pdp/forwardauth"
)

// schemaNode is the part of a JSON schema the test reads.
type schemaNode struct {
	Type                 any                    `json:"type"`
	Properties           map[string]*schemaNode `json:"properties"`
	AdditionalProperties any                    `json:"additionalProperties"`
	Items                *schemaNode            `json:"items"`
	Enum                 []string               `json:"enum"`
}

func loadSchema(t *testing.T) *schemaNode {
	t.Helper()
	data, err := os.ReadFile(chartDir + "/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s schemaNode
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	return &s
}

// TestSchemaClosed checks that every object the schema defines properties of
// refuses other properties, so that a misspelt key fails the install.
func TestSchemaClosed(t *testing.T) {
	var walk func(path string, n *schemaNode)
	walk = func(path string, n *schemaNode) {
		if n == nil {
			return
		}
		if len(n.Properties) > 0 && n.AdditionalProperties != false {
			t.Errorf("%s: defines properties but allows others (additionalProperties is not false)", path)
		}
		for name, p := range n.Properties {
			walk(path+"."+name, p)
		}
		walk(path+"[]", n.Items)
	}
	walk("values", loadSchema(t))
}

// TestSchemaConfigMatchesLoader checks that the schema of config, pdp's
// --config file, has exactly the keys of forwardauth.Config (by their yaml tags) at
// every level, and that a route's action and kind are pdp's closed sets. A
// field added to the loader or to the sets must be added to the schema.
func TestSchemaConfigMatchesLoader(t *testing.T) {
	config := loadSchema(t).Properties["config"]
	var compare func(path string, n *schemaNode, typ reflect.Type)
	compare = func(path string, n *schemaNode, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
			if n != nil && n.Items != nil {
				n = n.Items
			}
		}
		if typ.Kind() != reflect.Struct {
			return
		}
		if n == nil {
			t.Errorf("%s: no schema for %s", path, typ)
			return
		}
		var fields []string
		for f := range typ.Fields() {
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || tag == "" || tag == "-" {
				continue
			}
			fields = append(fields, tag)
			compare(path+"."+tag, n.Properties[tag], f.Type)
		}
		var props []string
		for name := range n.Properties {
			props = append(props, name)
		}
		slices.Sort(fields)
		slices.Sort(props)
		if !slices.Equal(fields, props) {
			t.Errorf("%s: schema properties %v, %s has %v", path, props, typ, fields)
		}
	}
	compare("config", config, reflect.TypeFor[forwardauth.Config]())

	route := config.Properties["routes"].Items
	for _, c := range []struct {
		field string
		want  []string
	}{{"action", pdp.Actions()}, {"kind", pdp.Kinds()}} {
		if got := route.Properties[c.field].Enum; !slices.Equal(got, c.want) {
			t.Errorf("routes[].%s enum %v, pdp has %v", c.field, got, c.want)
		}
	}
}
