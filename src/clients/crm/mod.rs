//! The CRMs, behind one set of types. Crono first: this version checks and stores a team's
//! Crono keys; searching, deals, notes and tasks come with the rest of the CRM work.

pub mod crono;
