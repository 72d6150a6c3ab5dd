//! A macro that declares a table of the next layer's function pointers and
//! loads it by name through the next `vkGet*ProcAddr`.

/// `fn_table!(Name, HandleType, GpaType { field: PFN_type = c"vkName" | c"vkNameKHR"; ... })`
/// declares `Name` with one `Option<PFN>` per field and an unsafe `load`.
/// Aliases are tried in order; the first non-null pointer wins.
macro_rules! fn_table {
    ($table:ident, $handle:ty, $gpa:ty { $( $field:ident : $pfn:ident = $($name:literal)|+ ; )* }) => {
        #[derive(Clone, Copy, Debug)]
        pub struct $table {
            $( pub $field: Option<ash::vk::$pfn>, )*
        }

        impl $table {
            /// A table with no function (nothing loaded).
            #[allow(dead_code)]
            pub fn none() -> Self {
                Self { $( $field: None, )* }
            }

            /// Loads every pointer from the next layer.
            ///
            /// # Safety
            /// `gpa` must be the next layer's `vkGet*ProcAddr` and `handle`
            /// a valid handle of the kind it accepts.
            pub unsafe fn load(gpa: $gpa, handle: $handle) -> Self {
                Self {
                    $( $field: {
                        let mut f: ash::vk::PFN_vkVoidFunction = None;
                        $(
                            if f.is_none() {
                                // SAFETY: `gpa` and `handle` are valid (this
                                // function's contract); the name is a
                                // NUL-terminated C string literal.
                                f = unsafe { gpa(handle, $name.as_ptr()) };
                            }
                        )+
                        // SAFETY: the pointer returned for this name has the
                        // signature the Vulkan registry gives it, which ash's
                        // `$pfn` mirrors; `None` stays `None`.
                        unsafe { std::mem::transmute::<ash::vk::PFN_vkVoidFunction, Option<ash::vk::$pfn>>(f) }
                    }, )*
                }
            }
        }
    };
}

pub(crate) use fn_table;
