package plan

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/timespec"
	"go.yaml.in/yaml/v3"
)

// Pos is a place in the plan file.
type Pos struct {
	File   string
	Line   int
	Column int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Error is one problem in a plan file, with where it is and, when there
// is one, a hint.
type Error struct {
	Pos  Pos
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	s := e.Pos.String() + ": " + e.Msg
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Errors are all the problems found, in file order.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Positions records where each field of a struct was set: field name
// (its yaml key) → position of the value. "" is the struct itself.
type Positions map[string]Pos

// decoder turns yaml nodes into the plan's structs, strictly: unknown
// keys, wrong types and duplicate keys are errors with positions.
type decoder struct {
	file  string
	errs  Errors
	depth int
	nodes int
	// retention is set while a retention duration is decoded.
	retention bool
}

// Bounds against alias loops and alias bombs: a plan is small.
const (
	maxDepth = 64
	maxNodes = 200_000
)

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Column: n.Column} }

func (d *decoder) errorf(n *yaml.Node, hint, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: d.pos(n), Msg: fmt.Sprintf(format, args...), Hint: hint})
}

var (
	durationType  = reflect.TypeOf(time.Duration(0))
	positionsType = reflect.TypeOf(Positions{})
)

// decode sets v (a pointer's element) from n.
func (d *decoder) decode(n *yaml.Node, v reflect.Value) {
	d.nodes++
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxDepth || d.nodes > maxNodes {
		if d.nodes <= maxNodes+1 && d.depth <= maxDepth+1 {
			d.errorf(n, "aliases that refer to themselves or expand too much", "the plan is nested too deeply or too large")
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Tag == "!!null" {
		return
	}
	if v.Type() == durationType {
		d.decodeDuration(n, v)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			// A single value where a list is expected is a list of one.
			if n.Kind == yaml.ScalarNode && v.Type().Elem().Kind() == reflect.String {
				v.Set(reflect.Append(v, reflect.ValueOf(n.Value).Convert(v.Type().Elem())))
				return
			}
			d.errorf(n, "", "expected a list, found %s", kindName(n))
			return
		}
		for _, c := range n.Content {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(c, e)
			v.Set(reflect.Append(v, e))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, "", "expected a mapping, found %s", kindName(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if seen[k.Value] {
				d.errorf(k, "", "%q is set twice", k.Value)
				continue
			}
			seen[k.Value] = true
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e)
			v.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.decode(n, e.Elem())
		v.Set(e)
	default:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, "", "expected a %s, found %s", typeName(v.Type()), kindName(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.errorf(n, "", "expected a %s, found %q", typeName(v.Type()), n.Value)
			return
		}
		// Every number in a plan is a count (retention, jobs, copies,
		// retries): none means anything when negative.
		if v.CanInt() && v.Int() < 0 {
			d.errorf(n, "0 or more", "%s must not be negative", n.Value)
		}
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "", "expected a mapping (key: value lines), found %s", kindName(n))
		return
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	posField := -1
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Type == positionsType {
			posField = i
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = i
		names = append(names, name)
	}
	var pos Positions
	if posField >= 0 {
		pos = Positions{"": d.pos(n)}
		v.Field(posField).Set(reflect.ValueOf(pos))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := fields[k.Value]
		if !ok {
			hint := "known keys: " + strings.Join(sorted(names), ", ")
			if s := closest(k.Value, names); s != "" {
				hint = "did you mean " + s + "?"
			}
			d.errorf(k, hint, "unknown key %q in %s", k.Value, typeName(t))
			continue
		}
		if seen[k.Value] {
			d.errorf(k, "", "%q is set twice", k.Value)
			continue
		}
		seen[k.Value] = true
		if pos != nil {
			pos[k.Value] = d.pos(val)
			// A mapping's entries (a repository's env) have their own
			// positions: "env.NAME".
			if val.Kind == yaml.MappingNode && v.Field(idx).Kind() == reflect.Map {
				for i := 0; i+1 < len(val.Content); i += 2 {
					pos[k.Value+"."+val.Content[i].Value] = d.pos(val.Content[i+1])
				}
			}
		}
		// A retention duration (a field tagged duration:"retention")
		// refuses an m restic would read as months.
		d.retention = t.Field(idx).Tag.Get("duration") == "retention"
		d.decode(val, v.Field(idx))
		d.retention = false
	}
}

// decodeDuration sets v from n, a duration of the timespec grammar.
func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value) {
	parse, hint := timespec.ParseDuration, "like 90s, 15min, 4h, 2d or 1y"
	if d.retention {
		parse, hint = timespec.ParseRetention, "like 36h, 7d, 6mo or 1y (mo: months, min: minutes)"
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, hint, "expected a duration")
		return
	}
	dur, err := parse(n.Value)
	if err != nil {
		d.errorf(n, hint, "%v", err)
		return
	}
	v.SetInt(int64(dur))
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "whole number"
	case reflect.String:
		return "string"
	}
	// RepoCheck is "repo check".
	var b strings.Builder
	for i, r := range t.Name() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}

// closest returns the candidate within edit distance 2 of s, if any.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
