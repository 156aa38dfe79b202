export interface Profile {
  readonly userId: string;
  readonly handle: string;
  readonly displayName: string | null;
  readonly bio: string | null;
  readonly followers: number;
  readonly following: number;
  readonly posts: number;
  readonly createdAt: Date;
}

export interface Post {
  readonly id: string;
  readonly author: { readonly id: string; readonly handle: string };
  readonly text: string;
  readonly createdAt: Date;
}

/** The user acting, as their verified token names them. */
export interface Actor {
  readonly userId: string;
  readonly handle: string;
}

export const POST_MAX = 500;
export const HANDLE_PATTERN = '^[a-z0-9_]{3,30}$';
/** Post ids are decimal 64-bit integers. */
export const ID_PATTERN = '^[0-9]{1,19}$';
