// Every built-in TldType can be a hint, at the size and alignment limits too.
use tld_runtime::task_local_data;

#[task_local_data]
static A_U8: u8 = 0;
#[task_local_data]
static A_I16: i16 = -1;
#[task_local_data]
static A_U32: u32 = 0;
#[task_local_data]
static A_I64: i64 = 0;
#[task_local_data]
static A_USIZE: usize = 0;
#[task_local_data]
static A_F32: f32 = 0.5;
#[task_local_data]
static A_F64: f64 = 0.25;
#[task_local_data]
static A_BOOL: bool = true;
#[task_local_data]
static BOOLS: [bool; 4] = [false; 4];
#[task_local_data]
static MATRIX: [[i64; 3]; 2] = [[0; 3]; 2];
#[task_local_data]
static LARGEST: [u8; 4088] = [0; 4088];
#[task_local_data(key = "k123456789_123456789_123456789_123456789_123456789_123456789_")]
static LONGEST_KEY: u8 = 0;

fn main() {
    assert_eq!(LONGEST_KEY.key().len(), 61);
    assert_eq!(MATRIX.site().type_name, "[[i64; 3]; 2]");
    assert!(A_BOOL.initial_value());
    let _ = (
        &A_U8, &A_I16, &A_U32, &A_I64, &A_USIZE, &A_F32, &A_F64, &BOOLS, &LARGEST,
    );
}
