// Command hangfs is a FUSE filesystem for nss-entrypoint's tests that stops
// answering, as a gcsfuse, s3fs or sshfs mount whose backend is gone does. It
// holds a directory hf/ with a token file, a file data.csv and a writable
// file log; depending on -hang, the lookup of any name, every open (files
// and directories), every directory read, every write or every getattr
// (stat of anything on the mount, its root included) never returns. With
// -armfile F the hang holds only while the file F exists, so that a test
// can first make the mount a process's working directory. With -interrupt, a request that the kernel
// interrupts (the caller got a signal) returns EINTR, as a daemon that
// honours FUSE interrupts does; without it, the request hangs for good and
// its caller stays in uninterruptible sleep until hangfs is killed.
//
// It prints "ready" on stdout once mounted, and unmounts on SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

var (
	hang      = flag.String("hang", "lookup", "what never returns: lookup, open, readdir, write or getattr")
	interrupt = flag.Bool("interrupt", false, "answer an interrupted request with EINTR")
	armFile   = flag.String("armfile", "", "hang only while this file exists")
)

// hangs reports whether requests of kind what are to hang now.
func hangs(what string) bool {
	if *hang != what {
		return false
	}
	if *armFile == "" {
		return true
	}
	_, err := os.Stat(*armFile)
	return err == nil
}

// block waits forever, or until the kernel interrupts the request when
// -interrupt is set.
func block(ctx context.Context) syscall.Errno {
	if *interrupt {
		<-ctx.Done()
		return syscall.EINTR
	}
	select {}
}

type dir struct {
	fs.Inode
	root bool
}

var (
	_ fs.NodeLookuper  = (*dir)(nil)
	_ fs.NodeOpendirer = (*dir)(nil)
	_ fs.NodeReaddirer = (*dir)(nil)
	_ fs.NodeOnAdder   = (*dir)(nil)
	_ fs.NodeGetattrer = (*dir)(nil)
)

func (d *dir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if hangs("getattr") {
		return block(ctx)
	}
	out.Mode = syscall.S_IFDIR | 0o755
	return 0
}

func (d *dir) OnAdd(ctx context.Context) {
	if !d.root {
		return
	}
	hf := d.NewPersistentInode(ctx, &dir{}, fs.StableAttr{Mode: syscall.S_IFDIR})
	d.AddChild("hf", hf, false)
	hf.AddChild("token", hf.NewPersistentInode(ctx, &file{data: "hf_fuseTOKENvalue\n"}, fs.StableAttr{}), false)
	d.AddChild("data.csv", d.NewPersistentInode(ctx, &file{data: "a,b\n1,2\n"}, fs.StableAttr{}), false)
	d.AddChild("log", d.NewPersistentInode(ctx, &file{}, fs.StableAttr{}), false)
}

func (d *dir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if hangs("lookup") {
		return nil, block(ctx)
	}
	ch := d.GetChild(name)
	if ch == nil {
		return nil, syscall.ENOENT
	}
	if ch.IsDir() {
		out.Mode = syscall.S_IFDIR | 0o755
	} else {
		out.Mode = syscall.S_IFREG | 0o644
		out.Size = uint64(len(ch.Operations().(*file).data))
	}
	return ch, 0
}

func (d *dir) Opendir(ctx context.Context) syscall.Errno {
	if hangs("open") {
		return block(ctx)
	}
	return 0
}

func (d *dir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	if hangs("readdir") {
		return nil, block(ctx)
	}
	var ents []fuse.DirEntry
	for name, ch := range d.Children() {
		ents = append(ents, fuse.DirEntry{Name: name, Mode: ch.Mode()})
	}
	return fs.NewListDirStream(ents), 0
}

type file struct {
	fs.Inode
	data string
}

var (
	_ fs.NodeOpener    = (*file)(nil)
	_ fs.NodeReader    = (*file)(nil)
	_ fs.NodeGetattrer = (*file)(nil)
	_ fs.NodeWriter    = (*file)(nil)
	_ fs.NodeSetattrer = (*file)(nil)
)

func (f *file) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if hangs("getattr") {
		return block(ctx)
	}
	out.Mode = syscall.S_IFREG | 0o666
	out.Size = uint64(len(f.data))
	return 0
}

func (f *file) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if hangs("open") {
		return nil, 0, block(ctx)
	}
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

// Write keeps nothing: it answers, or with -hang write never does.
func (f *file) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if hangs("write") {
		return 0, block(ctx)
	}
	return uint32(len(data)), 0
}

// Setattr accepts a truncation (an open with O_TRUNC) and changes nothing.
func (f *file) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o644
	return 0
}

func (f *file) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	end := min(int(off)+len(dest), len(f.data))
	if int(off) >= end {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData([]byte(f.data[off:end])), 0
}

func main() {
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: hangfs [-hang lookup|open|readdir|write|getattr] [-armfile F] [-interrupt] MOUNTPOINT")
		os.Exit(2)
	}
	zero := time.Duration(0)
	server, err := fs.Mount(flag.Arg(0), &dir{root: true}, &fs.Options{
		// No caching: every access reaches the daemon.
		EntryTimeout: &zero, AttrTimeout: &zero, NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{FsName: "hangfs", Name: "hangfs", DisableXAttrs: true},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "hangfs:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		server.Unmount()
		os.Exit(0)
	}()
	server.Wait()
}
