package check

import "golang.org/x/sys/unix"

// FDStat is what the kernel says of an open descriptor without asking its
// filesystem's server.
type FDStat struct {
	// Type is the file type bits (unix.S_IFREG, S_IFCHR, S_IFIFO, ...).
	Type uint32
	// MountID is the mount the file is on, when HasMountID (Linux 5.8+).
	MountID    uint64
	HasMountID bool
	// DevMajor and DevMinor are the device of its filesystem.
	DevMajor, DevMinor uint32
}

// StatFD asks statx about descriptor fd with AT_STATX_DONT_SYNC: FUSE and
// NFS answer from what the kernel holds, so a daemon or server that stopped
// answering cannot hold the call up (fstat could, and so could an ioctl or
// a poll on a FUSE file, which go to the daemon).
func StatFD(fd int) (FDStat, error) {
	var stx unix.Statx_t
	err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_STATX_DONT_SYNC, unix.STATX_TYPE|unix.STATX_MNT_ID, &stx)
	if err != nil {
		return FDStat{}, err
	}
	return FDStat{Type: uint32(stx.Mode) & unix.S_IFMT, MountID: stx.Mnt_id, HasMountID: stx.Mask&unix.STATX_MNT_ID != 0,
		DevMajor: stx.Dev_major, DevMinor: stx.Dev_minor}, nil
}

// Seekable reports whether fd can be seeked (lseek at its current offset,
// which no filesystem's server is asked about): a regular file or a block
// or character device like /dev/null can be; a pipe, socket or terminal
// cannot. For kernels or seccomp profiles that refuse statx.
func Seekable(fd int) bool {
	_, err := unix.Seek(fd, 0, unix.SEEK_CUR)
	return err != unix.ESPIPE
}
