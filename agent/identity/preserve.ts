/** `preserve`: "default" (every default field), "none", or field names and globs (`*` any run, `?` one character). */
export type Preserve = 'default' | 'none' | string[];

export function preserveFilter(preserve: Preserve): (path: string, optIn: boolean) => boolean {
  if (preserve === 'none') return () => false;
  if (preserve === 'default') return (_path, optIn) => !optIn;
  const patterns = preserve.map(
    (p) =>
      new RegExp(
        `^${p
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.')}$`,
      ),
  );
  return (path) => patterns.some((re) => re.test(path));
}
