package operator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// The CRDs (api/v1alpha1's markers) bound every field of a spec: names
// are not empty, keepLast is at least 1, list values hold no commas. But
// the API server checks an object only when it is written: one stored
// under an older or hand-edited CRD, or with validation off, is served as
// it was stored. The operator relies on those bounds (an index, a name to
// look up, a value on a command line), so before it acts on a spec it
// checks it again against the schema of the CRD it ships, and refuses one
// that breaks it with a message naming the field, rather than panicking,
// looping on an API error or doing what the CRD forbids.
//
// The check covers the OpenAPI rules controller-gen writes (minimum and
// maximum, lengths, patterns, enums, item and property counts); the CEL
// rules (x-kubernetes-validations) are checked in code where they matter
// (maxScheduleName; a Restore's snapshot and backupName).

// specSchemas are the spec schemas of the embedded CRDs by kind, with
// their patterns compiled.
var specSchemas = sync.OnceValues(func() (*schemaSet, error) {
	crds, err := CRDs()
	if err != nil {
		return nil, err
	}
	s := &schemaSet{specs: map[string]*apiextensionsv1.JSONSchemaProps{}, patterns: map[string]*regexp.Regexp{}}
	for _, crd := range crds {
		for _, v := range crd.Spec.Versions {
			if !v.Storage || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			spec, ok := v.Schema.OpenAPIV3Schema.Properties["spec"]
			if !ok {
				return nil, fmt.Errorf("CRD %s: no spec schema", crd.Name)
			}
			if err := s.compile(&spec); err != nil {
				return nil, fmt.Errorf("CRD %s: %w", crd.Name, err)
			}
			s.specs[crd.Spec.Names.Kind] = &spec
		}
	}
	return s, nil
})

type schemaSet struct {
	specs    map[string]*apiextensionsv1.JSONSchemaProps
	patterns map[string]*regexp.Regexp
}

func (s *schemaSet) compile(p *apiextensionsv1.JSONSchemaProps) error {
	if p.Pattern != "" && s.patterns[p.Pattern] == nil {
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			return fmt.Errorf("pattern %q: %w", p.Pattern, err)
		}
		s.patterns[p.Pattern] = re
	}
	for _, c := range p.Properties {
		if err := s.compile(&c); err != nil {
			return err
		}
	}
	if p.Items != nil && p.Items.Schema != nil {
		if err := s.compile(p.Items.Schema); err != nil {
			return err
		}
	}
	if p.AdditionalProperties != nil && p.AdditionalProperties.Schema != nil {
		return s.compile(p.AdditionalProperties.Schema)
	}
	return nil
}

// checkSpec returns a refusedError naming the first field of spec (the
// spec of a kind of the operator's CRDs) that breaks the CRD's schema, in
// field-name order, or nil.
func checkSpec(kind string, spec any) error {
	s, err := specSchemas()
	if err != nil {
		return err
	}
	schema := s.specs[kind]
	if schema == nil {
		return fmt.Errorf("no CRD schema for kind %s", kind)
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("%s spec: %w", kind, err)
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return fmt.Errorf("%s spec: %w", kind, err)
	}
	if msg := s.check("spec", schema, v); msg != "" {
		return &refusedError{msg: msg + " (the CRD refuses this value; the object was stored without that check)"}
	}
	return nil
}

// check returns what the first rule v breaks says, or "". It never
// quotes a string value: a URL may hold a credential.
func (s *schemaSet) check(path string, p *apiextensionsv1.JSONSchemaProps, v any) string {
	if v == nil {
		return "" // absent or null: only required fields would matter, and Go always writes those
	}
	if len(p.Enum) > 0 {
		raw, _ := json.Marshal(v)
		if !slices.ContainsFunc(p.Enum, func(e apiextensionsv1.JSON) bool { return bytes.Equal(bytes.TrimSpace(e.Raw), raw) }) {
			allowed := make([]string, len(p.Enum))
			for i, e := range p.Enum {
				allowed[i] = string(e.Raw)
			}
			return fmt.Sprintf("%s: not one of %v", path, allowed)
		}
	}
	switch v := v.(type) {
	case string:
		n := int64(utf8.RuneCountInString(v))
		switch {
		case p.MinLength != nil && n < *p.MinLength && n == 0:
			return fmt.Sprintf("%s: empty", path)
		case p.MinLength != nil && n < *p.MinLength:
			return fmt.Sprintf("%s: %d characters, fewer than %d", path, n, *p.MinLength)
		case p.MaxLength != nil && n > *p.MaxLength:
			return fmt.Sprintf("%s: %d characters, more than %d", path, n, *p.MaxLength)
		case p.Pattern != "" && !s.patterns[p.Pattern].MatchString(v):
			return fmt.Sprintf("%s: does not match %s", path, p.Pattern)
		}
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return fmt.Sprintf("%s: %s is not a number", path, v)
		}
		switch {
		case p.Minimum != nil && (f < *p.Minimum || p.ExclusiveMinimum && f == *p.Minimum):
			return fmt.Sprintf("%s: %s is less than the minimum %s", path, v, strconv.FormatFloat(*p.Minimum, 'g', -1, 64))
		case p.Maximum != nil && (f > *p.Maximum || p.ExclusiveMaximum && f == *p.Maximum):
			return fmt.Sprintf("%s: %s is more than the maximum %s", path, v, strconv.FormatFloat(*p.Maximum, 'g', -1, 64))
		}
	case []any:
		n := int64(len(v))
		switch {
		case p.MinItems != nil && n < *p.MinItems:
			return fmt.Sprintf("%s: %d items, fewer than %d", path, n, *p.MinItems)
		case p.MaxItems != nil && n > *p.MaxItems:
			return fmt.Sprintf("%s: %d items, more than %d", path, n, *p.MaxItems)
		}
		if p.Items != nil && p.Items.Schema != nil {
			for i, item := range v {
				if msg := s.check(fmt.Sprintf("%s[%d]", path, i), p.Items.Schema, item); msg != "" {
					return msg
				}
			}
		}
	case map[string]any:
		n := int64(len(v))
		switch {
		case p.MinProperties != nil && n < *p.MinProperties:
			return fmt.Sprintf("%s: %d entries, fewer than %d", path, n, *p.MinProperties)
		case p.MaxProperties != nil && n > *p.MaxProperties:
			return fmt.Sprintf("%s: %d entries, more than %d", path, n, *p.MaxProperties)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			var msg string
			if c, ok := p.Properties[k]; ok {
				msg = s.check(path+"."+k, &c, v[k])
			} else if p.AdditionalProperties != nil && p.AdditionalProperties.Schema != nil {
				msg = s.check(path+"["+k+"]", p.AdditionalProperties.Schema, v[k])
			}
			if msg != "" {
				return msg
			}
		}
	}
	return ""
}
