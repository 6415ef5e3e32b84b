package inventory

import (
	"path"
	"strings"
)

// file is what is kept of one file of the image: the content of a package
// database or os-release, the target of an os-release symbolic link, or
// the packages of a Go binary (parsed while the layer is read, so that the
// binary itself is not kept).
type file struct {
	content  []byte
	link     string
	packages []Package
	// tooLarge marks a package database over MaxFileSize, which makes the
	// image unsupported if it is part of the final filesystem.
	tooLarge bool
}

// fileOverhead approximates the memory that keeping one file costs besides
// its content.
const fileOverhead = 256

// cost approximates the memory that keeping f costs.
func (f *file) cost() int64 {
	n := int64(fileOverhead + len(f.content) + len(f.link))
	for _, p := range f.packages {
		n += int64(fileOverhead/2 + len(p.Type) + len(p.Name) + len(p.Source) + len(p.Version) + len(p.Location))
	}
	return n
}

// fileTree holds the kept files of a filesystem by path. Paths are clean
// and relative to the root ("etc/os-release"); the root is "". Directories
// are not recorded except as the parents of kept files, and files that are
// not kept are not recorded at all: the tree only has to know which kept
// files an entry of a higher layer hides.
//
// Every operation walks a path component by component, so its cost is
// linear in the length of the path, however many files the tree holds.
type fileTree struct {
	root treeNode
	// cost is the sum of the costs of the files in the tree.
	cost int64
}

type treeNode struct {
	children map[string]*treeNode
	// file is set for a kept file; such a node has no children.
	file *file
}

// node returns the node at p, or nil if the tree has none.
func (t *fileTree) node(p string) *treeNode {
	n := &t.root
	for rest := p; rest != "" && n != nil; {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		n = n.children[name]
	}
	return n
}

// lookup returns the file at p, or nil.
func (t *fileTree) lookup(p string) *file {
	if n := t.node(p); n != nil {
		return n.file
	}
	return nil
}

// drop removes the child name of parent with everything below it.
func (t *fileTree) drop(parent *treeNode, name string) {
	if child, ok := parent.children[name]; ok {
		t.cost -= child.subtreeCost()
		delete(parent.children, name)
	}
}

func (n *treeNode) subtreeCost() int64 {
	var c int64
	if n.file != nil {
		c += n.file.cost()
	}
	for _, child := range n.children {
		c += child.subtreeCost()
	}
	return c
}

// replace records that a layer has an entry at p, which hides a kept file
// at p, a kept file at a parent of p (which must now be a directory), and,
// unless the entry is a directory, everything below p.
func (t *fileTree) replace(p string, isDir bool) {
	parent := &t.root
	for rest := p; ; {
		name, more, found := strings.Cut(rest, "/")
		child := parent.children[name]
		switch {
		case child == nil:
			return
		case !found && isDir:
			if child.file != nil {
				t.cost -= child.file.cost()
				child.file = nil
			}
			return
		case !found || child.file != nil:
			t.drop(parent, name)
			return
		}
		parent, rest = child, more
	}
}

// remove deletes p and everything below it (a whiteout).
func (t *fileTree) remove(p string) {
	dir, name := splitPath(p)
	if parent := t.node(dir); parent != nil {
		t.drop(parent, name)
	}
}

// clear deletes everything below the directory dir (an opaque whiteout).
func (t *fileTree) clear(dir string) {
	n := t.node(dir)
	if n == nil {
		return
	}
	for _, child := range n.children {
		t.cost -= child.subtreeCost()
	}
	n.children = nil
}

// insert puts f at p, replacing whatever was at p or below it, and kept
// files at parents of p.
func (t *fileTree) insert(p string, f *file) {
	n := &t.root
	for rest := p; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		if n.file != nil {
			t.cost -= n.file.cost()
			n.file = nil
		}
		child := n.children[name]
		if child == nil {
			child = &treeNode{}
			if n.children == nil {
				n.children = make(map[string]*treeNode)
			}
			n.children[name] = child
		}
		n = child
	}
	t.cost -= n.subtreeCost()
	n.children = nil
	n.file = f
	t.cost += f.cost()
}

// walk calls fn for every file in the tree, in no particular order.
func (t *fileTree) walk(fn func(p string, f *file)) {
	t.root.walk("", fn)
}

func (n *treeNode) walk(p string, fn func(p string, f *file)) {
	if n.file != nil {
		fn(p, n.file)
	}
	for name, child := range n.children {
		child.walk(path.Join(p, name), fn)
	}
}

// maxLinkHops bounds the chain of symbolic links that resolve follows.
const maxLinkHops = 8

// resolve returns the content of the file at p, following symbolic links
// within the tree the way the kernel would, with the root as the root.
// Symbolic links in the parents of p are not followed.
func (t *fileTree) resolve(p string) ([]byte, bool) {
	for range maxLinkHops {
		f := t.lookup(p)
		switch {
		case f == nil:
			return nil, false
		case f.link == "":
			return f.content, f.content != nil
		}
		target := f.link
		if !path.IsAbs(target) {
			dir, _ := splitPath(p)
			target = "/" + dir + "/" + target
		}
		p = strings.TrimPrefix(path.Clean(target), "/")
	}
	return nil, false
}

// splitPath splits a clean relative path into its directory ("" for the
// root) and its last component.
func splitPath(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}
