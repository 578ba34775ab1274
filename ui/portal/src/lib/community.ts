// Community Q&A as `GET /v1/community/questions[/{id}]` answers it.
export interface Post {
  id: string;
  title?: string;
  body: string;
  author_name: string;
  product_area?: string;
  parent_id?: string | null;
  /** The staff-verified answer. */
  accepted?: boolean;
  verified?: boolean;
  /** Written by Portico's staff. */
  by_staff?: boolean;
  votes?: number;
  created_at?: string;
  answer_count?: number;
}
export interface Thread {
  question: Post;
  answers: Post[];
}

/** Answers staff vouch for (verified), then the asker's accepted one, lead the thread. */
export function isVerified(p: Post): boolean {
  return !!p.verified;
}

/** A detail answer in either `{question, answers}` or `{...question, answers}` form. */
export function asThread(data: any): Thread {
  if (data && data.question) return { question: data.question, answers: data.answers ?? [] };
  const { answers = [], ...question } = data ?? {};
  return { question, answers };
}
