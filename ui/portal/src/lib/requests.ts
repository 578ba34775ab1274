// Requests (support, bug, feature) and what hangs off them: comments,
// attachments and votes.
import { api } from './api';

export const KINDS = ['support', 'bug', 'feature'] as const;
export const PRODUCT_AREAS = ['billing', 'integrations', 'reporting', 'api', 'sso', 'mobile', 'workflows'] as const;
/** Checked here so a person hears at once; the server enforces its own limits. */
export const MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024;

export interface AttachmentInfo {
  id: string;
  name: string;
  content_type: string;
  size: number;
  uploaded_by_name?: string;
  uploaded_at?: string;
}
export interface RequestRecord {
  id: string;
  kind: string;
  title: string;
  body: string;
  status: string;
  priority: string;
  product_area: string;
  requester_id: string;
  created_at: string;
  updated_at: string;
  votes?: number;
  attachments?: AttachmentInfo[];
}
export interface Comment {
  id: string;
  author_name?: string;
  author_id?: string;
  body: string;
  created_at: string;
  staff?: boolean;
  kind?: string;
}

export function uploadAttachment(requestId: string, file: File): Promise<AttachmentInfo> {
  return api<AttachmentInfo>(`/v1/requests/${requestId}/attachments?name=${encodeURIComponent(file.name)}`, {
    method: 'POST',
    body: file,
    contentType: file.type || 'application/octet-stream',
  });
}

export function attachmentUrl(requestId: string, attachmentId: string): string {
  return `/v1/requests/${requestId}/attachments/${attachmentId}`;
}
