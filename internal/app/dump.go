package app

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/restorer"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
)

// DumpRequest writes one path of a snapshot to W: a file's content, a
// directory as a tar stream.
type DumpRequest struct {
	// Opened is the repository, open with its index loaded.
	Opened   *repository.Repository
	Snapshot *snapshot.Snapshot
	// Path is the path inside the snapshot ("/" the whole of it).
	Path string
	W    io.Writer
}

// Dump writes req.Path of req.Snapshot to req.W: a file's bytes, or a
// directory as a PAX tar of everything below it (modes with their
// setuid/setgid/sticky bits, owners, times, links, devices, xattrs).
func (a *App) Dump(ctx context.Context, req DumpRequest) error {
	r := req.Opened
	p := path.Clean("/" + req.Path)
	node, err := restorer.FindNode(ctx, r, req.Snapshot.Tree, p)
	if err != nil {
		return err
	}
	switch node.Type {
	case tree.TypeFile:
		return writeContent(ctx, r, node, req.W)
	case tree.TypeDir:
		tw := tar.NewWriter(req.W)
		err := walker.Walk(ctx, r, *node.Subtree, strings.TrimPrefix(p, "/"), func(np string, n *tree.Node) error {
			hdr := tarHeader(strings.TrimPrefix(np, "/"), n)
			if hdr == nil {
				return nil
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if n.Type == tree.TypeFile {
				return writeContent(ctx, r, n, tw)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tw.Close()
	}
	return fmt.Errorf("%s is a %s, not a file or directory", p, node.Type)
}

// tarHeader is the PAX header of n under name, nil for a kind tar cannot
// hold.
func tarHeader(name string, n *tree.Node) *tar.Header {
	mode := fs.FileMode(n.Mode)
	hdr := &tar.Header{Name: name, Mode: int64(mode.Perm()), ModTime: n.ModTime, Uid: int(n.UID), Gid: int(n.GID),
		Uname: n.User, Gname: n.Group, Format: tar.FormatPAX}
	for bit, m := range map[fs.FileMode]int64{fs.ModeSetuid: 0o4000, fs.ModeSetgid: 0o2000, fs.ModeSticky: 0o1000} {
		if mode&bit != 0 {
			hdr.Mode |= m
		}
	}
	switch n.Type {
	case tree.TypeFile:
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(n.Size)
	case tree.TypeDir:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case tree.TypeSymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(n.LinkTarget)
	case tree.TypeFIFO:
		hdr.Typeflag = tar.TypeFifo
	case tree.TypeCharDev, tree.TypeDev:
		hdr.Typeflag = tar.TypeChar
		if n.Type == tree.TypeDev {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64((n.Device>>8)&0xfff|(n.Device>>32)&^0xfff), int64(n.Device&0xff|(n.Device>>12)&^0xff)
	default:
		return nil
	}
	if len(n.Xattrs) > 0 {
		hdr.PAXRecords = map[string]string{}
		for _, x := range n.Xattrs {
			hdr.PAXRecords["SCHILY.xattr."+string(x.Name)] = string(x.Value)
		}
	}
	return hdr
}

// writeContent writes a file node's content to w, blob by blob.
func writeContent(ctx context.Context, r *repository.Repository, n *tree.Node, w io.Writer) error {
	var buf []byte
	var err error
	for _, id := range n.Content {
		buf, err = r.LoadBlob(ctx, pack.DataBlob, id, buf)
		if err != nil {
			return err
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
