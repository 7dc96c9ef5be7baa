//! A minimal document tree for html5ever to build: nodes in one vector,
//! linked by index. html5ever does the WHATWG tree construction (implied
//! end tags, misnested formatting, tables); this only stores the result.
//! Written here rather than taken from `scraper`, which would bring a CSS
//! selector engine this crate has no use for.

use std::borrow::Cow;
use std::cell::{Ref, RefCell};

use html5ever::tendril::StrTendril;
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, QualName, local_name, ns};

/// What a node is.
#[derive(Debug)]
pub(crate) enum Data {
    /// The document, or a template's contents.
    Document,
    Element {
        name: QualName,
        attributes: Vec<(String, String)>,
        /// A `<template>`'s contents, which are not its children.
        template: Option<usize>,
    },
    Text(String),
    /// Comments, processing instructions.
    Other,
}

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) parent: Option<usize>,
    pub(crate) children: Vec<usize>,
    pub(crate) data: Data,
}

/// The parsed page; node 0 is the document.
#[derive(Debug)]
pub(crate) struct Tree {
    pub(crate) nodes: Vec<Node>,
    /// What `elem_name` answers for a handle that is not an element (the
    /// tree builder promises never to ask, but a wrong answer beats a panic).
    unnamed: QualName,
}

impl Tree {
    pub(crate) fn node(&self, id: usize) -> Option<&Node> {
        self.nodes.get(id)
    }

    fn add(&mut self, data: Data) -> usize {
        self.nodes.push(Node { parent: None, children: Vec::new(), data });
        self.nodes.len() - 1
    }

    fn detach(&mut self, id: usize) {
        let Some(parent) = self.nodes.get_mut(id).and_then(|n| n.parent.take()) else { return };
        if let Some(parent) = self.nodes.get_mut(parent) {
            parent.children.retain(|&child| child != id);
        }
    }

    /// Insert `child` into `parent`'s children at `position` (the end when
    /// `None`), merging text into an adjacent text node before it.
    fn insert(&mut self, parent: usize, position: Option<usize>, child: NodeOrText<usize>) {
        let Some(count) = self.nodes.get(parent).map(|p| p.children.len()) else { return };
        let position = position.unwrap_or(count).min(count);
        let id = match child {
            NodeOrText::AppendNode(id) => {
                self.detach(id);
                id
            }
            NodeOrText::AppendText(text) => {
                let before = position.checked_sub(1).and_then(|i| self.nodes.get(parent)?.children.get(i).copied());
                if let Some(Data::Text(existing)) = before.and_then(|b| self.nodes.get_mut(b)).map(|n| &mut n.data) {
                    existing.push_str(&text);
                    return;
                }
                self.add(Data::Text(text.to_string()))
            }
        };
        if let Some(node) = self.nodes.get_mut(id) {
            node.parent = Some(parent);
        }
        if let Some(parent) = self.nodes.get_mut(parent) {
            parent.children.insert(position, id);
        }
    }
}

/// The sink html5ever writes into.
pub(crate) struct Sink(RefCell<Tree>);

impl Default for Sink {
    fn default() -> Self {
        let unnamed = QualName::new(None, ns!(html), local_name!("div"));
        let document = Node { parent: None, children: Vec::new(), data: Data::Document };
        Sink(RefCell::new(Tree { nodes: vec![document], unnamed }))
    }
}

impl TreeSink for Sink {
    type Handle = usize;
    type Output = Tree;
    type ElemName<'a> = Ref<'a, QualName>;

    fn finish(self) -> Tree {
        self.0.into_inner()
    }

    fn parse_error(&self, _message: Cow<'static, str>) {}

    fn get_document(&self) -> usize {
        0
    }

    fn elem_name<'a>(&'a self, target: &'a usize) -> Ref<'a, QualName> {
        Ref::map(self.0.borrow(), |tree| match tree.nodes.get(*target).map(|n| &n.data) {
            Some(Data::Element { name, .. }) => name,
            _ => &tree.unnamed,
        })
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, _flags: ElementFlags) -> usize {
        let mut tree = self.0.borrow_mut();
        let template = (name.local == local_name!("template")).then(|| tree.add(Data::Document));
        let attributes = attrs.into_iter().map(|a| (a.name.local.to_string(), a.value.to_string())).collect();
        tree.add(Data::Element { name, attributes, template })
    }

    fn create_comment(&self, _text: StrTendril) -> usize {
        self.0.borrow_mut().add(Data::Other)
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> usize {
        self.0.borrow_mut().add(Data::Other)
    }

    fn append(&self, parent: &usize, child: NodeOrText<usize>) {
        self.0.borrow_mut().insert(*parent, None, child);
    }

    fn append_based_on_parent_node(&self, element: &usize, prev_element: &usize, child: NodeOrText<usize>) {
        let has_parent = self.0.borrow().nodes.get(*element).is_some_and(|n| n.parent.is_some());
        if has_parent {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(&self, _name: StrTendril, _public_id: StrTendril, _system_id: StrTendril) {}

    fn get_template_contents(&self, target: &usize) -> usize {
        match self.0.borrow().nodes.get(*target).map(|n| &n.data) {
            Some(Data::Element { template: Some(contents), .. }) => *contents,
            _ => *target,
        }
    }

    fn same_node(&self, x: &usize, y: &usize) -> bool {
        x == y
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &usize, new_node: NodeOrText<usize>) {
        let mut tree = self.0.borrow_mut();
        if let NodeOrText::AppendNode(id) = &new_node {
            tree.detach(*id);
        }
        let Some(parent) = tree.nodes.get(*sibling).and_then(|n| n.parent) else { return };
        let position = tree.nodes.get(parent).and_then(|p| p.children.iter().position(|c| c == sibling));
        tree.insert(parent, position, new_node);
    }

    fn add_attrs_if_missing(&self, target: &usize, attrs: Vec<Attribute>) {
        let mut tree = self.0.borrow_mut();
        if let Some(Data::Element { attributes, .. }) = tree.nodes.get_mut(*target).map(|n| &mut n.data) {
            for attr in attrs {
                let name = attr.name.local.to_string();
                if !attributes.iter().any(|(existing, _)| *existing == name) {
                    attributes.push((name, attr.value.to_string()));
                }
            }
        }
    }

    fn remove_from_parent(&self, target: &usize) {
        self.0.borrow_mut().detach(*target);
    }

    fn reparent_children(&self, node: &usize, new_parent: &usize) {
        let mut tree = self.0.borrow_mut();
        let children = tree.nodes.get_mut(*node).map(|n| std::mem::take(&mut n.children)).unwrap_or_default();
        for child in children {
            if let Some(child_node) = tree.nodes.get_mut(child) {
                child_node.parent = None;
            }
            tree.insert(*new_parent, None, NodeOrText::AppendNode(child));
        }
    }
}
