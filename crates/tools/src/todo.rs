//! `todo`: the model's task list, replaced whole on every call and echoed back compactly.

use serde::Deserialize;

use crate::ToolError;

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TodoStatus {
    /// Not started.
    Pending,
    /// Being worked on (at most one at a time).
    InProgress,
    /// Done.
    Completed,
}

/// One task.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TodoItem {
    /// What to do.
    pub content: String,
    /// Where it stands.
    pub status: TodoStatus,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TodoArgs {
    todos: Vec<TodoItem>,
}

/// Checks the new list and renders it: `[x] done`, `[>] doing`, `[ ] to do`.
pub(crate) fn todo(list: &mut Vec<TodoItem>, args: TodoArgs) -> Result<String, ToolError> {
    let in_progress = args.todos.iter().filter(|t| t.status == TodoStatus::InProgress).count();
    if in_progress > 1 {
        return Err(ToolError::TodoInProgress { count: in_progress });
    }
    *list = args.todos;
    Ok(render(list))
}

fn render(list: &[TodoItem]) -> String {
    if list.is_empty() {
        return "todo list cleared".to_string();
    }
    let done = list.iter().filter(|t| t.status == TodoStatus::Completed).count();
    let mut out = format!("todos ({done}/{} done):", list.len());
    for item in list {
        let mark = match item.status {
            TodoStatus::Pending => "[ ]",
            TodoStatus::InProgress => "[>]",
            TodoStatus::Completed => "[x]",
        };
        out.push_str(&format!("\n{mark} {}", item.content.trim()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(content: &str, status: TodoStatus) -> TodoItem {
        TodoItem { content: content.into(), status }
    }

    #[test]
    fn renders_compactly() {
        let mut list = Vec::new();
        let todos =
            vec![item("a", TodoStatus::Completed), item("b", TodoStatus::InProgress), item("c", TodoStatus::Pending)];
        assert_eq!(todo(&mut list, TodoArgs { todos }).unwrap(), "todos (1/3 done):\n[x] a\n[>] b\n[ ] c");
        assert_eq!(list.len(), 3);
        assert_eq!(todo(&mut list, TodoArgs { todos: vec![] }).unwrap(), "todo list cleared");
    }

    #[test]
    fn refuses_two_in_progress_and_keeps_the_old_list() {
        let mut list = vec![item("keep", TodoStatus::Pending)];
        let todos = vec![item("a", TodoStatus::InProgress), item("b", TodoStatus::InProgress)];
        assert!(matches!(todo(&mut list, TodoArgs { todos }), Err(ToolError::TodoInProgress { count: 2 })));
        assert_eq!(list, vec![item("keep", TodoStatus::Pending)]);
    }
}
