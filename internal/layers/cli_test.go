package layers

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxCLIFunc is the longest a function of the CLI may be: a command's
// function builds a request from flags, calls a use case and prints, and
// anything longer is work that belongs below it (issue 16).
const maxCLIFunc = 80

// TestCLIFunctionsAreShort fails when a function of internal/cli (tests
// aside) is longer than maxCLIFunc lines.
func TestCLIFunctionsAreShort(t *testing.T) {
	dir := filepath.Join("..", "cli")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			checked++
			start, end := fset.Position(fd.Pos()), fset.Position(fd.End())
			if n := end.Line - start.Line + 1; n > maxCLIFunc {
				t.Errorf("%s:%d: %s is %d lines (at most %d in the CLI: move the work into a use case)", name, start.Line, fd.Name.Name, n, maxCLIFunc)
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d functions found in %s", checked, dir)
	}
}
