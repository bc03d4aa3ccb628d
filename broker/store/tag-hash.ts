/**
 * Tag and key hashes with Java's String.hashCode semantics (UTF-16 code units,
 * 32-bit wrap-around), so consume queue tag codes and index slots agree with
 * RocketMQ's.
 */

/**
 * Java's String.hashCode of `s`, continued from `seed` (the hash of a prefix):
 * javaStringHash(a + b) === javaStringHash(b, javaStringHash(a)).
 *
 * @example
 *   javaStringHash('TagA'); // 2598919
 */
export function javaStringHash(s: string, seed = 0): number {
  let h = seed | 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

/** RocketMQ's tagsString2tagsCode: the tag's hashCode; 0 for no tag. */
export function tagHash(tag: string): number {
  return tag.length === 0 ? 0 : javaStringHash(tag);
}
