// Prints the Go type table of v1.PodTemplateSpec for the Rust spew printer.
package main

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"

	v1 "k8s.io/api/core/v1"
)

type field struct {
	Name   string `json:"name"`
	JSON   string `json:"json"`
	Type   string `json:"type"`
	Inline bool   `json:"inline,omitempty"`
}

type typ struct {
	Kind   string  `json:"kind"`
	Elem   string  `json:"elem,omitempty"`
	Fields []field `json:"fields,omitempty"`
}

var table = map[string]typ{}

func special(t reflect.Type) string {
	switch t.String() {
	case "v1.Time":
		if t.PkgPath() == "k8s.io/apimachinery/pkg/apis/meta/v1" {
			return "time"
		}
	case "resource.Quantity":
		return "quantity"
	case "intstr.IntOrString":
		return "intorstring"
	}
	return ""
}

func walk(t reflect.Type) {
	name := t.String()
	if _, ok := table[name]; ok {
		return
	}
	if s := special(t); s != "" {
		table[name] = typ{Kind: s}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		table[name] = typ{Kind: "struct"}
		var fields []field
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			jsonName := strings.Split(tag, ",")[0]
			inline := strings.Contains(tag, ",inline") || (f.Anonymous && jsonName == "")
			fields = append(fields, field{Name: f.Name, JSON: jsonName, Type: f.Type.String(), Inline: inline})
			walk(f.Type)
		}
		table[name] = typ{Kind: "struct", Fields: fields}
	case reflect.Ptr, reflect.Slice, reflect.Map:
		kind := map[reflect.Kind]string{reflect.Ptr: "ptr", reflect.Slice: "slice", reflect.Map: "map"}[t.Kind()]
		table[name] = typ{Kind: kind, Elem: t.Elem().String()}
		walk(t.Elem())
		if t.Kind() == reflect.Map {
			walk(t.Key())
		}
	case reflect.String:
		table[name] = typ{Kind: "string"}
	case reflect.Bool:
		table[name] = typ{Kind: "bool"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		table[name] = typ{Kind: "int"}
	default:
		table[name] = typ{Kind: "unsupported"}
	}
}

func main() {
	walk(reflect.TypeOf(v1.PodTemplateSpec{}))
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(table); err != nil {
		panic(err)
	}
}
