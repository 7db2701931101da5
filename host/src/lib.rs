//! aplo
