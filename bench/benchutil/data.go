package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cmdGenRandom writes N bytes of incompressible, seed-deterministic data
// (ChaCha8) to a file.
func cmdGenRandom(args []string) error {
	fl := flag.NewFlagSet("genrandom", flag.ExitOnError)
	out := fl.String("out", "", "output file")
	n := fl.Int64("bytes", 1<<30, "number of bytes")
	seed := fl.Uint64("seed", 1, "seed")
	_ = fl.Parse(args)
	if *out == "" {
		return errors.New("-out is required")
	}
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], *seed)
	copy(s[8:], "bunker-bench-random")
	rng := rand.NewChaCha8(s)
	f, err := os.Create(*out + ".tmp")
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for left := *n; left > 0; {
		m := int64(len(buf))
		if left < m {
			m = left
		}
		_, _ = rng.Read(buf[:m])
		if _, err := f.Write(buf[:m]); err != nil {
			f.Close()
			return err
		}
		left -= m
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(*out+".tmp", *out)
}

const (
	manifestName = "manifest.tsv"
	pgOrigName   = "pg.orig"
	// pgInsertAfter: the 100 inserted bytes go in at the first line
	// boundary at or after this offset ("near the start" of the dump).
	pgInsertAfter = 4096
	pgInsertLen   = 100
	// smallPatchLen: bytes rewritten in each changed small file.
	smallPatchLen = 16
)

// cmdMutate applies the per-round change: rewrite smallPatchLen bytes in
// place in percent% of the regular non-empty files under src/small (the
// choice and the bytes depend only on the round), and insert 100 bytes
// near the start of src/pg. The originals are kept in stash so that
// revert restores the pristine data set. A pending mutation is reverted
// first.
func cmdMutate(args []string) error {
	fl := flag.NewFlagSet("mutate", flag.ExitOnError)
	src := fl.String("src", "", "data set source tree")
	stash := fl.String("stash", "", "stash directory (same filesystem as src)")
	round := fl.Uint64("round", 1, "round number (selects files and bytes)")
	small := fl.String("small", "small", "small-files subtree, relative to src")
	pg := fl.String("pg", "pg/pgbench.sql", "pgbench dump, relative to src ('' to skip)")
	percent := fl.Float64("percent", 1, "percentage of small files to change")
	_ = fl.Parse(args)
	if *src == "" || *stash == "" {
		return errors.New("-src and -stash are required")
	}
	if err := revert(*src, *stash); err != nil {
		return fmt.Errorf("reverting the previous mutation: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(*stash, "orig"), 0o700); err != nil {
		return err
	}
	mf, err := os.OpenFile(filepath.Join(*stash, manifestName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer mf.Close()

	var files []string
	root := filepath.Join(*src, *small)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > 0 {
			rel, _ := filepath.Rel(*src, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	n := int(float64(len(files))*(*percent)/100 + 0.999999)
	rng := rand.New(rand.NewPCG(*round, 0x62756e6b6572))
	perm := rng.Perm(len(files))
	changedBytes := 0
	for i := 0; i < n && i < len(perm); i++ {
		rel := files[perm[i]]
		p := filepath.Join(*src, rel)
		orig, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		name := strconv.Itoa(i)
		if err := os.WriteFile(filepath.Join(*stash, "orig", name), orig, 0o600); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(mf, "F\t%s\t%s\n", name, rel); err != nil {
			return err
		}
		k := min(smallPatchLen, len(orig))
		off := rng.IntN(len(orig) - k + 1)
		patch := make([]byte, k)
		for j := range patch {
			patch[j] = orig[off+j] ^ byte(1+rng.IntN(255))
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(patch, int64(off)); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		changedBytes += k
	}
	fmt.Printf("changed %d of %d small files (%d bytes rewritten)\n", min(n, len(files)), len(files), changedBytes)

	if *pg == "" {
		return nil
	}
	p := filepath.Join(*src, *pg)
	orig := filepath.Join(*stash, pgOrigName)
	if _, err := fmt.Fprintf(mf, "P\t%s\t%s\n", pgOrigName, *pg); err != nil {
		return err
	}
	if err := mf.Sync(); err != nil {
		return err
	}
	if err := os.Rename(p, orig); err != nil {
		return err
	}
	off, err := insertLine(orig, p, *round)
	if err != nil {
		return err
	}
	fmt.Printf("inserted %d bytes into %s at offset %d\n", pgInsertLen, *pg, off)
	return nil
}

// insertLine copies in to out with a pgInsertLen-byte line inserted at the
// first line boundary at or after pgInsertAfter, and returns its offset.
func insertLine(in, out string, round uint64) (int64, error) {
	fi, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer fi.Close()
	st, err := fi.Stat()
	if err != nil {
		return 0, err
	}
	fo, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, st.Mode().Perm())
	if err != nil {
		return 0, err
	}
	r := bufio.NewReaderSize(fi, 1<<20)
	w := bufio.NewWriterSize(fo, 1<<20)
	head := make([]byte, pgInsertAfter)
	n, err := io.ReadFull(r, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		fo.Close()
		return 0, err
	}
	_, _ = w.Write(head[:n])
	off := int64(n)
	if n == pgInsertAfter {
		line, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			fo.Close()
			return 0, err
		}
		_, _ = w.Write(line)
		off += int64(len(line))
	}
	ins := fmt.Sprintf("-- bench round %d: inserted line", round)
	ins += strings.Repeat(".", pgInsertLen-1-len(ins)) + "\n"
	_, _ = w.WriteString(ins)
	if _, err := io.Copy(w, r); err != nil {
		fo.Close()
		return 0, err
	}
	if err := w.Flush(); err != nil {
		fo.Close()
		return 0, err
	}
	return off, fo.Close()
}

func cmdRevert(args []string) error {
	fl := flag.NewFlagSet("revert", flag.ExitOnError)
	src := fl.String("src", "", "data set source tree")
	stash := fl.String("stash", "", "stash directory")
	_ = fl.Parse(args)
	if *src == "" || *stash == "" {
		return errors.New("-src and -stash are required")
	}
	return revert(*src, *stash)
}

// revert undoes a (possibly interrupted) mutation recorded in stash.
func revert(src, stash string) error {
	data, err := os.ReadFile(filepath.Join(stash, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return os.RemoveAll(stash)
	}
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) != 3 {
			return fmt.Errorf("bad manifest line %q", line)
		}
		kind, name, rel := parts[0], parts[1], parts[2]
		dst := filepath.Join(src, rel)
		switch kind {
		case "F":
			orig, err := os.ReadFile(filepath.Join(stash, "orig", name))
			if err != nil {
				return err
			}
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				return err
			}
			if _, err := f.Write(orig); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		case "P":
			o := filepath.Join(stash, name)
			if _, err := os.Stat(o); err == nil {
				if err := os.Rename(o, dst); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("bad manifest line %q", line)
		}
	}
	return os.RemoveAll(stash)
}

// cmdTreeStat prints the number of regular files, their total size, the
// number of directories and of symlinks under a directory.
func cmdTreeStat(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: treestat DIR")
	}
	var files, dirs, links, size int64
	err := filepath.WalkDir(args[0], func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			files++
			size += info.Size()
		case d.IsDir():
			dirs++
		case d.Type()&fs.ModeSymlink != 0:
			links++
		}
		return nil
	})
	if err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "files=%d bytes=%d dirs=%d symlinks=%d\n", files, size, dirs, links)
	_, err = os.Stdout.Write(b.Bytes())
	return err
}
