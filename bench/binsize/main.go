// Command binsize says what each module adds to a Go binary: the sizes of
// the binary's symbols (go tool nm -size), summed by the module whose
// package defines each symbol, the modules coming from the build
// information in the binary (go version -m). Symbols of the standard
// library count as "std", the runtime's tables of the linker (go:*
// symbols that no package owns) as "(linker tables)".
//
// Each group is charged its code and data, and a share of the function
// tables (.gopclntab, kept in a stripped binary: stack traces and the
// garbage collector need them) in proportion to its code: an estimate of
// what the group costs in a release build. The binary must keep its
// symbol table: measure a build without -s (scripts/release.sh strips
// it). The first line gives the file's sections by kind.
//
// Usage:
//
//	go run ./bench/binsize [-n 15] [-by module|family|package] BINARY
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"debug/buildinfo"
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

func main() {
	n := flag.Int("n", 15, "print the `N` largest groups")
	by := flag.String("by", "module", "group by `module`, family (the module's host and owner: k8s.io, github.com/aws) or package")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: binsize [-n N] [-by module|family|package] BINARY")
		os.Exit(2)
	}
	if err := run(os.Stdout, flag.Arg(0), *by, *n); err != nil {
		fmt.Fprintln(os.Stderr, "binsize:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, bin, by string, n int) error {
	if by != "module" && by != "family" && by != "package" {
		return fmt.Errorf("-by %q: want module, family or package", by)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("%s: no Go build information: %w", bin, err)
	}
	mods := []string{info.Main.Path}
	for _, d := range info.Deps {
		mods = append(mods, d.Path)
	}
	// Longest path first, so that a nested module wins over its parent
	// (cloud.google.com/go/storage over cloud.google.com/go).
	slices.SortFunc(mods, func(a, b string) int { return cmp.Compare(len(b), len(a)) })

	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("%s: %w (binsize reads ELF binaries)", bin, err)
	}
	defer f.Close()
	st, err := os.Stat(bin)
	if err != nil {
		return err
	}
	// What the file holds, by kind of section (file sizes: DWARF is
	// compressed).
	var text, pcln, debug, symtab, loaded int64
	for _, s := range f.Sections {
		size := int64(s.FileSize)
		if s.Type == elf.SHT_NOBITS {
			continue
		}
		switch {
		case s.Name == ".text":
			text = size
		case s.Name == ".gopclntab":
			pcln = size
		case strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_"):
			debug += size
		case s.Name == ".symtab" || s.Name == ".strtab":
			symtab += size
		}
		if s.Flags&elf.SHF_ALLOC != 0 {
			loaded += size
		}
	}
	if symtab == 0 {
		return fmt.Errorf("%s has no symbol table (built with -ldflags=-s?): measure an unstripped build", bin)
	}
	mb := func(b int64) string { return fmt.Sprintf("%.1f", float64(b)/1e6) }
	fmt.Fprintf(w, "%s: %s MB: code %s, function tables (.gopclntab) %s, other loaded data %s, DWARF %s, symbol table %s\n\n",
		bin, mb(st.Size()), mb(text), mb(pcln), mb(loaded-text-pcln), mb(debug), mb(symtab))

	// inFile reports whether addr is in a section the file holds (not
	// the zeroed .bss and .noptrbss).
	inFile := func(addr uint64) bool {
		for _, s := range f.Sections {
			if s.Flags&elf.SHF_ALLOC != 0 && s.Type != elf.SHT_NOBITS && addr >= s.Addr && addr < s.Addr+s.Size {
				return true
			}
		}
		return false
	}
	out, err := exec.Command("go", "tool", "nm", "-size", bin).Output()
	if err != nil {
		return fmt.Errorf("go tool nm -size %s: %w", bin, err)
	}
	type sizes struct{ code, data int64 }
	groups := map[string]*sizes{}
	var codeTotal int64
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		// "  4a2f00     1234 T github.com/x/y.(*T).M"
		fl := strings.Fields(sc.Text())
		if len(fl) < 4 || fl[2] == "U" {
			continue
		}
		addr, err1 := strconv.ParseUint(fl[0], 16, 64)
		size, err2 := strconv.ParseInt(fl[1], 10, 64)
		if err1 != nil || err2 != nil || size == 0 || !inFile(addr) {
			continue
		}
		g := group(strings.Join(fl[3:], " "), mods, info.Main.Path, by)
		if groups[g] == nil {
			groups[g] = &sizes{}
		}
		if fl[2] == "T" || fl[2] == "t" {
			groups[g].code += size
			codeTotal += size
		} else {
			groups[g].data += size
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}

	// The function tables are charged to each group in proportion to its
	// code: what the group costs in a stripped binary.
	type row struct {
		name             string
		code, data, cost int64
	}
	var rows []row
	var total int64
	for k, v := range groups {
		cost := v.code + v.data
		if codeTotal > 0 {
			cost += pcln * v.code / codeTotal
		}
		rows = append(rows, row{k, v.code, v.data, cost})
		total += cost
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Or(cmp.Compare(b.cost, a.cost), cmp.Compare(a.name, b.name)) })
	fmt.Fprintf(w, "| %s | code MB | data MB | with its function tables MB | share |\n|---|---:|---:|---:|---:|\n", by)
	var rest row
	for i, r := range rows {
		if i >= n {
			rest.code, rest.data, rest.cost = rest.code+r.code, rest.data+r.data, rest.cost+r.cost
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.1f%% |\n", r.name, mb(r.code), mb(r.data), mb(r.cost), 100*float64(r.cost)/float64(total))
	}
	if len(rows) > n {
		fmt.Fprintf(w, "| %d others | %s | %s | %s | %.1f%% |\n", len(rows)-n, mb(rest.code), mb(rest.data), mb(rest.cost), 100*float64(rest.cost)/float64(total))
	}
	return nil
}

// group returns the group the symbol name belongs to.
func group(name string, mods []string, mainMod, by string) string {
	name = symbolName(name)
	if name == "" {
		return "(linker tables)"
	}
	if strings.HasPrefix(name, "main.") {
		name = mainMod + "/cmd/" + name
	}
	for _, m := range mods {
		rest, ok := strings.CutPrefix(name, m)
		if !ok || rest == "" || (rest[0] != '.' && rest[0] != '/') {
			continue
		}
		switch by {
		case "package":
			return m + packageOf(rest)
		case "family":
			if m == mainMod {
				return m
			}
			return family(m)
		}
		return m
	}
	pkg := packageOf(name)
	if first, _, _ := strings.Cut(pkg, "/"); !strings.Contains(first, ".") && by != "package" {
		return "std"
	}
	// A package of no module in the build information (vendored in the
	// standard library: vendor/golang.org/x/..., say).
	return pkg
}

// packageOf returns the import path in a symbol name: what precedes the
// first dot after the last slash (closures and methods follow it).
func packageOf(name string) string {
	slash := strings.LastIndex(name, "/")
	if dot := strings.Index(name[slash+1:], "."); dot >= 0 {
		return name[:slash+1+dot]
	}
	return name
}

// family returns the host of a module path and, on hosts that hold many
// owners' code, the owner: k8s.io, sigs.k8s.io, github.com/aws.
func family(mod string) string {
	parts := strings.Split(mod, "/")
	switch parts[0] {
	case "github.com", "gitlab.com", "gopkg.in", "go.opentelemetry.io":
		if len(parts) > 1 && parts[0] != "go.opentelemetry.io" {
			return parts[0] + "/" + parts[1]
		}
	case "cloud.google.com", "google.golang.org":
		return "google (cloud.google.com, google.golang.org)"
	}
	return parts[0]
}

// symbolName returns the symbol's name without what the linker prefixes
// to it (type:, go:itab.) or what follows the function or type's name
// (type arguments, an itab's interface), or "" for the linker's own
// tables.
func symbolName(name string) string {
	for _, p := range []string{"type:", "go:itab.", "go:info.", "go:cuinfo.", "go:link.pkghashbytes.", "go:link.pkghash."} {
		if s, ok := strings.CutPrefix(name, p); ok {
			name = s
			break
		}
	}
	if strings.HasPrefix(name, "go:") || strings.HasPrefix(name, "runtime.pclntab") {
		return ""
	}
	name = strings.TrimLeft(name, "*[]")
	if i := strings.IndexAny(name, "[,"); i >= 0 {
		name = name[:i]
	}
	name = strings.TrimPrefix(name, "vendor/")
	if !strings.Contains(name, ".") {
		return ""
	}
	return name
}
