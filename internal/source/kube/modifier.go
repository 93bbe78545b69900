package kube

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// Modifiers change objects on their way into the cluster. The file format
// follows Velero's resource modifiers:
//
//	version: v1
//	resourceModifierRules:
//	- conditions:
//	    groupResource: deployments.apps    # resource.group; globs allowed
//	    resourceNameRegex: "^web-.*$"      # optional
//	    namespaces: [shop]                 # optional; after namespace mapping
//	    labelSelector:                     # optional
//	      matchLabels: {tier: frontend}
//	  patches:                             # RFC 6902 JSON patch
//	  - operation: replace
//	    path: /spec/replicas
//	    value: 1                           # any YAML value
//	  mergePatches:                        # RFC 7386 merge patch
//	  - patchData: |
//	      metadata: {labels: {restored: "yes"}}
//
// Unlike Velero, a JSON patch value is a YAML value, not a string of JSON.
type Modifiers struct {
	Version string         `json:"version"`
	Rules   []ModifierRule `json:"resourceModifierRules"`
}

// ModifierRule is one rule: conditions and the patches applied when they
// hold.
type ModifierRule struct {
	Conditions   ModifierConditions `json:"conditions"`
	Patches      []JSONPatchOp      `json:"patches,omitempty"`
	MergePatches []MergePatch       `json:"mergePatches,omitempty"`

	nameRe   *regexp.Regexp
	selector labels.Selector
	patch    jsonpatch.Patch
	merges   [][]byte
}

// ModifierConditions select the objects a rule applies to.
type ModifierConditions struct {
	GroupResource     string         `json:"groupResource"`
	ResourceNameRegex string         `json:"resourceNameRegex,omitempty"`
	Namespaces        []string       `json:"namespaces,omitempty"`
	LabelSelector     *LabelSelector `json:"labelSelector,omitempty"`
}

// LabelSelector matches labels exactly.
type LabelSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// JSONPatchOp is one JSON patch operation.
type JSONPatchOp struct {
	Operation string          `json:"operation"`
	From      string          `json:"from,omitempty"`
	Path      string          `json:"path"`
	Value     json.RawMessage `json:"value,omitempty"`
}

// MergePatch is a JSON merge patch, written as YAML or JSON.
type MergePatch struct {
	PatchData string `json:"patchData"`
}

// ParseModifiers parses and checks a modifiers file.
func ParseModifiers(data []byte) (*Modifiers, error) {
	var m Modifiers
	if err := yaml.UnmarshalStrict(data, &m); err != nil {
		return nil, fmt.Errorf("resource modifiers: %w", err)
	}
	if m.Version != "v1" {
		return nil, fmt.Errorf("resource modifiers: version %q: want v1", m.Version)
	}
	for i := range m.Rules {
		r := &m.Rules[i]
		where := fmt.Sprintf("resource modifiers: rule %d", i+1)
		c := r.Conditions
		if c.GroupResource == "" {
			return nil, fmt.Errorf("%s: conditions.groupResource is required", where)
		}
		if _, err := path.Match(c.GroupResource, ""); err != nil {
			return nil, fmt.Errorf("%s: groupResource %q: %w", where, c.GroupResource, err)
		}
		for _, ns := range c.Namespaces {
			if _, err := path.Match(ns, ""); err != nil {
				return nil, fmt.Errorf("%s: namespace pattern %q: %w", where, ns, err)
			}
		}
		if c.ResourceNameRegex != "" {
			re, err := regexp.Compile(c.ResourceNameRegex)
			if err != nil {
				return nil, fmt.Errorf("%s: resourceNameRegex: %w", where, err)
			}
			r.nameRe = re
		}
		if c.LabelSelector != nil {
			r.selector = labels.SelectorFromSet(c.LabelSelector.MatchLabels)
		}
		if len(r.Patches) == 0 && len(r.MergePatches) == 0 {
			return nil, fmt.Errorf("%s: no patches and no mergePatches", where)
		}
		if len(r.Patches) > 0 {
			ops := make([]map[string]any, 0, len(r.Patches))
			for j, p := range r.Patches {
				switch p.Operation {
				case "add", "remove", "replace", "move", "copy", "test":
				default:
					return nil, fmt.Errorf("%s: patch %d: operation %q: want add, remove, replace, move, copy or test", where, j+1, p.Operation)
				}
				if !strings.HasPrefix(p.Path, "/") {
					return nil, fmt.Errorf("%s: patch %d: path %q must start with /", where, j+1, p.Path)
				}
				op := map[string]any{"op": p.Operation, "path": p.Path}
				if p.From != "" {
					op["from"] = p.From
				}
				if len(p.Value) > 0 {
					op["value"] = p.Value
				}
				ops = append(ops, op)
			}
			buf, err := json.Marshal(ops)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			if r.patch, err = jsonpatch.DecodePatch(buf); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		for j, mp := range r.MergePatches {
			js, err := yaml.YAMLToJSON([]byte(mp.PatchData))
			if err != nil {
				return nil, fmt.Errorf("%s: merge patch %d: %w", where, j+1, err)
			}
			if !strings.HasPrefix(strings.TrimSpace(string(js)), "{") {
				return nil, fmt.Errorf("%s: merge patch %d: want an object", where, j+1)
			}
			r.merges = append(r.merges, js)
		}
	}
	return &m, nil
}

// Apply applies every matching rule to obj (JSON) and returns the result
// and how many rules matched.
func (m *Modifiers) Apply(obj []byte, group, resource, namespace, name string, lbls map[string]string) ([]byte, int, error) {
	if m == nil {
		return obj, 0, nil
	}
	gr := groupResource(group, resource)
	n := 0
	for i := range m.Rules {
		r := &m.Rules[i]
		c := r.Conditions
		if ok, _ := path.Match(c.GroupResource, gr); !ok {
			continue
		}
		if len(c.Namespaces) > 0 && !matchAny(c.Namespaces, namespace) {
			continue
		}
		if r.nameRe != nil && !r.nameRe.MatchString(name) {
			continue
		}
		if r.selector != nil && !r.selector.Matches(labels.Set(lbls)) {
			continue
		}
		var err error
		if r.patch != nil {
			if obj, err = r.patch.Apply(obj); err != nil {
				return nil, n, fmt.Errorf("resource modifier rule %d: %w", i+1, err)
			}
		}
		for _, mp := range r.merges {
			if obj, err = jsonpatch.MergePatch(obj, mp); err != nil {
				return nil, n, fmt.Errorf("resource modifier rule %d: %w", i+1, err)
			}
		}
		n++
	}
	return obj, n, nil
}
