/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hash.h - the one string hash (64-bit FNV-1a) and the one integer mixer.
 *
 * Where a hash only picks a bucket its value is private and may change.
 * Some are seen outside the process and must not change between versions,
 * so these functions compute exactly what the copies they replaced did:
 * - guestfs/lock.c puts vfs_hash_str(host id) in the names of lock
 *   records when the host id is long; other hosts, maybe running an older
 *   vfsd, find the records on the shared server by those names;
 * - st_ino numbers (backends/nfs/dir.c's stand-ins, backends/sftp/attr.c's, the
 *   virtual directories' in vfsd/router_table.c): `ls -i`, find, tar and rsync
 *   see them, and a new version must not renumber a tree.
 * (vfsd/router_internal.h's mix_ino, which puts the mount id in the top
 * byte of a backend's st_ino, is a tag rather than a hash and stays there.)
 */
#ifndef VFSD_LIB_HASH_H
#define VFSD_LIB_HASH_H

#include <stdint.h>

#define VFS_HASH_FNV_BASIS       14695981039346656037ull
#define VFS_HASH_FNV_PRIME       1099511628211ull
/*
 * FNV's offset basis with its last digit lost, as some of the first copies
 * had it: as good a start, and the one that the st_ino of SFTP files and
 * of virtual directories were always made from (see above), so those keep
 * it.  Nothing new should use it.
 */
#define VFS_HASH_FNV_BASIS_SHORT 1469598103934665603ull

/* FNV-1a of the string s continued from the state h. */
static inline uint64_t vfs_hash_str_from(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * VFS_HASH_FNV_PRIME;
	return h;
}

/* 64-bit FNV-1a of s. */
static inline uint64_t vfs_hash_str(const char *s)
{
	return vfs_hash_str_from(VFS_HASH_FNV_BASIS, s);
}

/*
 * An integer spread over all 64 bits (MurmurHash3's 64-bit finaliser):
 * sequential inode numbers land in different buckets whether these are
 * taken from the low bits (vfsd/inode.c) or the high ones
 * (vfsd/passthrough.c).  Bucket choice only: nothing outside sees it.
 */
static inline uint64_t vfs_hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

#endif /* VFSD_LIB_HASH_H */
