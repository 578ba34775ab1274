/** Whether the chat panel is open, and which conversation it should show. */
export const chatPanel = $state({ open: false, want: null as string | null });

export function openChatWith(conversationId: string | null) {
  chatPanel.want = conversationId;
  chatPanel.open = true;
}
