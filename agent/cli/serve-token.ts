/**
 * The bearer token `serve` runs with, from --token-file or $SNAPSYNC_TOKEN:
 * a token shorter than MIN_TOKEN_LENGTH is refused (guessable, and too short
 * to scrub from logs), and a token file others may open is logged as a warning.
 */
import * as fs from 'node:fs';
import { MIN_TOKEN_LENGTH, TOKEN_TOO_SHORT } from '../server/auth';
import type { Logger } from '../server/logger';
import { UsageError } from './usage-error';

/** Null when there is none (then serve needs --insecure-no-auth). */
export function serveToken(tokenFile: string | undefined, logger: Logger): string | null {
  const token = (tokenFile ? readTokenFile(tokenFile, logger) : process.env.SNAPSYNC_TOKEN?.trim()) || null;
  if (token !== null && token.length < MIN_TOKEN_LENGTH)
    throw new UsageError(
      `the token in ${tokenFile ?? '$SNAPSYNC_TOKEN'} is shorter than ${MIN_TOKEN_LENGTH} characters: use a random one (init --token-file writes one, or: openssl rand -base64 32)`,
      TOKEN_TOO_SHORT,
    );
  return token;
}

function readTokenFile(file: string, logger: Logger): string {
  const mode = fs.statSync(file).mode & 0o777;
  // As ssh does for private keys: any access for group or others is too much.
  if (mode & 0o077)
    logger.warn('the token file can be opened by other users than its owner: chmod 600 it', {
      code: 'TOKEN_FILE_NOT_PRIVATE',
      file,
      mode: `0${mode.toString(8).padStart(3, '0')}`,
    });
  return fs.readFileSync(file, 'utf8').trim();
}
