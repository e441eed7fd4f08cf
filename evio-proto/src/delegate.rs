//! [`delegate_events!`](crate::delegate_events): the methods of a handler that wraps
//! another and passes most calls on.

/// Writes the [`Events`](crate::Events) methods of a wrapper that pass each call on,
/// unchanged, to the handler it wraps.
///
/// A wrapper (a handler that holds another, to add a log line, a count, a way to stop
/// the server) changes one or two methods and must pass all the others on: a method it
/// leaves out runs the trait's default instead, and the inner handler is silently no
/// longer told. Inside the wrapper's `impl Events`,
///
/// - `delegate_events!(self.inner);` writes all the methods, each calling the same
///   method of `self.inner` with the same arguments and returning what it returns;
/// - `delegate_events!(self.inner, except serving, data);` writes all but the methods
///   named, which the wrapper writes itself.
///
/// After `self` comes the field that holds the inner handler (`self.0` in a tuple
/// struct, `self.a.b` further in). `type Context` stays the wrapper's to write: the
/// inner handler's (`H::Context` in a generic wrapper, or the type itself). The
/// methods are written with the trait's own signatures and no allocation, so the macro
/// works in `no_std` handlers too. Methods added to `Events` in the future are passed on
/// without a change to the wrapper.
///
/// ```
/// use evio_proto::{Action, Conn, Events};
///
/// /// Counts the bytes its handler receives; every other call goes to the handler as
/// /// it came.
/// struct CountBytes<H> {
///     inner: H,
///     bytes: u64,
/// }
///
/// impl<H: Events> Events for CountBytes<H> {
///     type Context = H::Context;
///
///     evio_proto::delegate_events!(self.inner, except data);
///
///     fn data(&mut self, conn: &mut Conn<'_, H::Context>, input: &[u8]) -> Action {
///         self.bytes += input.len() as u64;
///         self.inner.data(conn, input)
///     }
/// }
///
/// /// Hides the server's start from its handler: `serving` is named and not written,
/// /// so the trait's default runs in its place.
/// struct Unannounced<H>(H);
///
/// impl<H: Events> Events for Unannounced<H> {
///     type Context = H::Context;
///     evio_proto::delegate_events!(self.0, except serving);
/// }
/// ```
///
/// A method written and not named is written twice, which does not compile:
///
/// ```compile_fail,E0201
/// # use evio_proto::{Action, Conn, Events};
/// struct Wrapper<H>(H);
/// impl<H: Events> Events for Wrapper<H> {
///     type Context = H::Context;
///     evio_proto::delegate_events!(self.0);
///     fn data(&mut self, conn: &mut Conn<'_, H::Context>, input: &[u8]) -> Action {
///         // error[E0201]: duplicate definitions with name `data`
///         self.0.data(conn, input)
///     }
/// }
/// ```
///
/// and neither does a name that is not a method of `Events`:
///
/// ```compile_fail
/// # use evio_proto::Events;
/// struct Wrapper<H>(H);
/// impl<H: Events> Events for Wrapper<H> {
///     type Context = H::Context;
///     evio_proto::delegate_events!(self.0, except dta); // error: `dta` is not a method of `Events`
/// }
/// ```
#[macro_export]
macro_rules! delegate_events {
    // The names `except` may give.
    (@known serving) => {};
    (@known opened) => {};
    (@known data) => {};
    (@known woken) => {};
    (@known timeout) => {};
    (@known drained) => {};
    (@known input_ended) => {};
    (@known closed) => {};
    (@known detached) => {};
    (@known server_woken) => {};
    (@known post_refused) => {};
    (@known loop_message) => {};
    (@known prewrite) => {};
    (@known postwrite) => {};
    (@known tick) => {};
    (@known transport) => {};
    (@known $other:ident) => {
        ::core::compile_error!(::core::concat!(
            "`",
            ::core::stringify!($other),
            "` is not a method of `Events`"
        ));
    };

    // `@method name [except…] .field…`: nothing when `name` is among the exceptions...
    (@method serving [serving $($rest:ident)*] $($field:tt)*) => {};
    (@method opened [opened $($rest:ident)*] $($field:tt)*) => {};
    (@method data [data $($rest:ident)*] $($field:tt)*) => {};
    (@method woken [woken $($rest:ident)*] $($field:tt)*) => {};
    (@method timeout [timeout $($rest:ident)*] $($field:tt)*) => {};
    (@method drained [drained $($rest:ident)*] $($field:tt)*) => {};
    (@method input_ended [input_ended $($rest:ident)*] $($field:tt)*) => {};
    (@method closed [closed $($rest:ident)*] $($field:tt)*) => {};
    (@method detached [detached $($rest:ident)*] $($field:tt)*) => {};
    (@method server_woken [server_woken $($rest:ident)*] $($field:tt)*) => {};
    (@method post_refused [post_refused $($rest:ident)*] $($field:tt)*) => {};
    (@method loop_message [loop_message $($rest:ident)*] $($field:tt)*) => {};
    (@method prewrite [prewrite $($rest:ident)*] $($field:tt)*) => {};
    (@method postwrite [postwrite $($rest:ident)*] $($field:tt)*) => {};
    (@method tick [tick $($rest:ident)*] $($field:tt)*) => {};
    (@method transport [transport $($rest:ident)*] $($field:tt)*) => {};
    (@method $name:ident [$other:ident $($rest:ident)*] $($field:tt)*) => {
        $crate::delegate_events!(@method $name [$($rest)*] $($field)*);
    };
    // ...and the forwarding method once none of them is `name`.
    (@method serving [] $($field:tt)*) => {
        #[inline]
        fn serving(&mut self, server: $crate::Server<'_>) -> $crate::Flow {
            self $($field)* .serving(server)
        }
    };
    (@method opened [] $($field:tt)*) => {
        #[inline]
        fn opened(&mut self, conn: &mut $crate::Conn<'_, Self::Context>) -> $crate::Action {
            self $($field)* .opened(conn)
        }
    };
    (@method data [] $($field:tt)*) => {
        #[inline]
        fn data(
            &mut self,
            conn: &mut $crate::Conn<'_, Self::Context>,
            input: &[u8],
        ) -> $crate::Action {
            self $($field)* .data(conn, input)
        }
    };
    (@method woken [] $($field:tt)*) => {
        #[inline]
        fn woken(&mut self, conn: &mut $crate::Conn<'_, Self::Context>) -> $crate::Action {
            self $($field)* .woken(conn)
        }
    };
    (@method timeout [] $($field:tt)*) => {
        #[inline]
        fn timeout(&mut self, conn: &mut $crate::Conn<'_, Self::Context>) -> $crate::Action {
            self $($field)* .timeout(conn)
        }
    };
    (@method drained [] $($field:tt)*) => {
        #[inline]
        fn drained(&mut self, conn: &mut $crate::Conn<'_, Self::Context>) -> $crate::Action {
            self $($field)* .drained(conn)
        }
    };
    (@method input_ended [] $($field:tt)*) => {
        #[inline]
        fn input_ended(&mut self, conn: &mut $crate::Conn<'_, Self::Context>) -> $crate::Action {
            self $($field)* .input_ended(conn)
        }
    };
    (@method closed [] $($field:tt)*) => {
        #[inline]
        fn closed(
            &mut self,
            info: &$crate::ConnInfo,
            context: Self::Context,
            error: ::core::option::Option<$crate::CloseError>,
            others: &mut $crate::Loop<'_, Self::Context>,
        ) -> $crate::Flow {
            self $($field)* .closed(info, context, error, others)
        }
    };
    (@method detached [] $($field:tt)*) => {
        #[inline]
        fn detached(
            &mut self,
            info: &$crate::ConnInfo,
            context: &mut Self::Context,
            socket: $crate::Detached<'_>,
            others: &mut $crate::Loop<'_, Self::Context>,
        ) -> $crate::Flow {
            self $($field)* .detached(info, context, socket, others)
        }
    };
    (@method server_woken [] $($field:tt)*) => {
        #[inline]
        fn server_woken(&mut self, others: &mut $crate::Loop<'_, Self::Context>) -> $crate::Flow {
            self $($field)* .server_woken(others)
        }
    };
    (@method loop_message [] $($field:tt)*) => {
        #[inline]
        fn loop_message(
            &mut self,
            others: &mut $crate::Loop<'_, Self::Context>,
            from: usize,
            bytes: &[u8],
        ) -> $crate::Flow {
            self $($field)* .loop_message(others, from, bytes)
        }
    };
    (@method post_refused [] $($field:tt)*) => {
        #[inline]
        fn post_refused(
            &mut self,
            others: &mut $crate::Loop<'_, Self::Context>,
            to: $crate::ConnId,
            kind: $crate::PostKind,
            len: usize,
            why: $crate::Refusal,
        ) -> $crate::Flow {
            self $($field)* .post_refused(others, to, kind, len, why)
        }
    };
    (@method prewrite [] $($field:tt)*) => {
        #[inline]
        fn prewrite(&mut self, id: $crate::ConnId, attempted: usize) {
            self $($field)* .prewrite(id, attempted)
        }
    };
    (@method postwrite [] $($field:tt)*) => {
        #[inline]
        fn postwrite(&mut self, id: $crate::ConnId, written: usize, remaining: usize) {
            self $($field)* .postwrite(id, written, remaining)
        }
    };
    (@method tick [] $($field:tt)*) => {
        #[inline]
        fn tick(&mut self, others: &mut $crate::Loop<'_, Self::Context>) -> $crate::Tick {
            self $($field)* .tick(others)
        }
    };
    (@method transport [] $($field:tt)*) => {
        #[inline]
        fn transport(&mut self) -> ::core::option::Option<&mut dyn $crate::Transport> {
            self $($field)* .transport()
        }
    };

    (self $(. $field:tt)+ $(, except $($except:ident),+)? $(,)?) => {
        $($($crate::delegate_events!(@known $except);)+)?
        $crate::delegate_events!(@method serving [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method opened [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method data [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method woken [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method timeout [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method drained [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method input_ended [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method closed [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method detached [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method server_woken [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method post_refused [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method loop_message [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method prewrite [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method postwrite [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method tick [$($($except)+)?] $(. $field)+);
        $crate::delegate_events!(@method transport [$($($except)+)?] $(. $field)+);
    };
}
