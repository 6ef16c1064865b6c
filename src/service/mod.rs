//! The application: the rules of the service, one type per resource, taking domain inputs and
//! returning domain results. Front doors (gRPC today, REST next) convert, authenticate and map
//! errors, then call in here; nothing here knows a transport.

pub mod watches;
