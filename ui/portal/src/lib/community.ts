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
  votes?: number;
  created_at?: string;
  answer_count?: number;
}
export interface Thread {
  question: Post;
  answers: Post[];
}

export function isVerified(p: Post): boolean {
  return !!(p.accepted || p.verified);
}

/** A detail answer in either `{question, answers}` or `{...question, answers}` form. */
export function asThread(data: any): Thread {
  if (data && data.question) return { question: data.question, answers: data.answers ?? [] };
  const { answers = [], ...question } = data ?? {};
  return { question, answers };
}
